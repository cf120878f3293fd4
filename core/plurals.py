"""Words that agree with a number ("1 участник", "2 участника", "5 участников"), chosen by the
CLDR plural rules of their language through Babel, for the bot and the Mini App alike."""

from __future__ import annotations

from typing import Any

from babel import Locale


class Plural:
    """One phrase in one language, in every plural form that language has.

    ``Plural("ru", one="{n} участник", few="{n} участника", many="{n} участников",
    other="{n} участника").format(n=21)`` is "21 участник". A missing form is refused when the
    phrase is made, so a table of words cannot ship half translated. ``format`` takes the same
    values as ``str.format``; the one named ``count`` picks the form.
    """

    def __init__(self, locale: str, *, count: str = "n", **forms: str) -> None:
        self._rule = Locale.parse(locale).plural_form
        needed = self._rule.tags | {"other"}
        missing = needed - forms.keys()
        unknown = forms.keys() - needed
        if missing or unknown:
            raise ValueError(
                f"{locale} plural needs the forms {sorted(needed)}; "
                f"missing {sorted(missing)}, unknown {sorted(unknown)}"
            )
        self.locale, self.count, self.forms = locale, count, forms

    def __call__(self, number: int) -> str:
        """The form for ``number``, unfilled."""
        return self.forms[self._rule(number)]

    def format(self, **values: Any) -> str:
        return self(int(values[self.count])).format(**values)

    def __repr__(self) -> str:
        return f"Plural({self.locale!r}, {self.forms!r})"
