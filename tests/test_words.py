"""Both languages say everything, and a number always meets its noun in the right form."""

from __future__ import annotations

import pytest

from bot.texts import EN, RU, Texts
from core.plurals import Plural
from webapp.words import WORDS


@pytest.mark.parametrize(
    ("table", "other"), [(EN, RU), (WORDS["en"], WORDS["ru"])], ids=["bot", "mini app"]
)
def test_english_and_russian_have_the_same_keys_and_the_same_plurals(table, other):
    assert table.keys() == other.keys()
    assert {k for k, v in table.items() if isinstance(v, Plural)} == {
        k for k, v in other.items() if isinstance(v, Plural)
    }


@pytest.mark.parametrize(
    ("count", "says"),
    [
        (1, "Отправляю 1 участнику."),
        (2, "Отправляю 2 участникам."),
        (5, "Отправляю 5 участникам."),
        (21, "Отправляю 21 участнику."),
    ],
)
def test_the_bot_agrees_the_noun_with_the_number_in_russian(count: int, says: str):
    assert Texts("ru")("remind_queued", count=count) == says


@pytest.mark.parametrize(
    ("n", "ru", "en"),
    [
        (1, "1 участник", "1 member"),
        (3, "3 участника", "3 members"),
        (11, "11 участников", "11 members"),
        (22, "22 участника", "22 members"),
        (0, "0 участников", "0 members"),
    ],
)
def test_the_mini_app_counts_members_in_both_languages(n: int, ru: str, en: str):
    assert WORDS["ru"]["members_n"].format(n=n) == ru
    assert WORDS["en"]["members_n"].format(n=n) == en


def test_a_plural_missing_a_form_of_its_language_is_refused():
    with pytest.raises(ValueError, match="missing \\['few'\\]"):
        Plural("ru", one="{n} день", many="{n} дней", other="{n} дня")
