"""One router per resource, each route a parse → core call → commit → serialise."""
