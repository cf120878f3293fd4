# One image for every vestnik process; docker-compose.yml picks the command.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY core core
COPY api api
COPY bot bot
COPY webapp webapp
COPY worker worker
COPY migrations migrations
COPY vestnik vestnik
RUN pip install . && useradd --system --home /app vestnik
USER vestnik
EXPOSE 8000
CMD ["vestnik", "api", "--host", "0.0.0.0", "--port", "8000"]
