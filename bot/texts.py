"""Everything the bot says, in English and Russian. Keys are shared; {placeholders} are filled in
by the handlers. A member's own locale wins; otherwise Telegram's language_code."""

from __future__ import annotations

from typing import Any

from core.plurals import Plural

# A phrase with a number in it is a Plural: every form its language needs ("1 person", "2 people").
Words = dict[str, str | Plural]

EN: Words = {
    # joining
    "joined": "Hi {name}! You are now in {workspace}.",
    "welcome_back": "Welcome back, {name}! You are in {workspace}.",
    "not_yours": (
        "This invite was made for someone else, so it cannot be used from your account. "
        "Ask your team lead for your own link."
    ),
    "lead_not_yours": (
        "Someone else ({who}) tried to use the personal invite made for {member}. "
        "It was refused; nothing changed."
    ),
    "account_in_use": "Your {messenger} account is already linked to {name} in {workspace}.",
    "expired": "This invite has expired. Ask your team lead for a new one.",
    "used_up": "This invite has been used up. Ask your team lead for a new one.",
    "revoked": "This invite was withdrawn. Ask your team lead for a new one.",
    "unknown": (
        "I do not recognise this invite. Check that the link was copied whole, "
        "or ask your team lead for a new one."
    ),
    "stranger": (
        "Hi! I am vestnik, your team's reminder bot. To join a team, open the invite link "
        "your team lead sent you."
    ),
    "hello_member": "Hi {name}! /events shows what is coming up; /help lists everything I can do.",
    # time zones
    "ask_timezone": (
        "Which time zone are you in? Send a city (Berlin, Москва) or a zone name "
        "(Europe/Berlin), or keep {zone}."
    ),
    "keep_zone": "Keep {zone}",
    "timezone_set": "Time zone: {zone}. It is {local} there now.",
    "timezone_unknown": (
        "I do not know the time zone “{text}”. Send a city such as Moscow or a zone name "
        "such as Europe/Moscow."
    ),
    "timezone_pick": "Several places match “{text}”. Tap yours:",
    # help and agenda
    "help": (
        "What I can do:\n"
        "/events: your upcoming events and your answers\n"
        "/next: the next one\n"
        "/settings: time zone, quiet hours, language, time of day, {messenger} messages\n"
        "/calendar: a link that puts your events into your calendar app\n"
        "/unsubscribe: stop reminders (events you said you are going to still remind you)\n"
        "/resubscribe: turn reminders back on"
    ),
    "help_lead": (
        "For leads:\n"
        "/who <event>: who is going, not going, maybe, silent\n"
        "/remind <group or #tag> <text>: a quick message to everyone in it"
    ),
    "events_title": "Your upcoming events:",
    "events_none": "Nothing is coming up in the next 60 days.",
    "next": "Next: {title}, {when}{where}.",
    "answer_line": "Your answer: {answer}.",
    "answer_missing": "You have not answered yet.",
    "answer_by": "Please answer by {deadline}.",
    "going": "going",
    "not_going": "not going",
    "maybe": "maybe",
    # calendar
    "calendar_new": (
        "Your personal calendar (keep the link to yourself):\n{url}\n\n"
        "Apple Calendar, Outlook: {webcal}\n"
        "Google Calendar: Settings → Add calendar → From URL, paste the first link."
    ),
    "calendar_exists": (
        "You already have a calendar link (made {created}). For safety it is not shown again. "
        "Tap below for a new one; the old one then stops working."
    ),
    "calendar_rotate": "New link",
    # subscription
    "unsubscribed": (
        "Done: no more reminders. Events you said you are going to still remind you. "
        "/resubscribe turns them back on."
    ),
    "already_unsubscribed": "You are already unsubscribed. /resubscribe turns reminders back on.",
    "resubscribed": "Reminders are on again.",
    "already_subscribed": "Reminders are already on.",
    # settings
    "settings": (
        "Your settings:\n"
        "Time zone: {zone}\n"
        "Quiet hours: {quiet}\n"
        "Language: {language}\n"
        "Preferred time of day: {time_of_day}\n"
        "Messages in {messenger}: {on_off}"
    ),
    "quiet_none": "none",
    "on": "on",
    "off": "off (other ways only)",
    "btn_timezone": "Time zone",
    "btn_quiet": "Quiet hours",
    "btn_language": "Language",
    "btn_time_of_day": "Time of day",
    "btn_messenger_off": "Mute {messenger}",
    "btn_messenger_on": "Unmute {messenger}",
    "ask_quiet": (
        "Send your quiet hours as two times, e.g. 22:00-08:00. Send “off” to remove them."
    ),
    "quiet_set": "Quiet hours: {quiet}. Non-urgent messages wait until they end.",
    "quiet_off": "Quiet hours removed.",
    "quiet_bad": "I could not read “{text}”. Send two times like 22:00-08:00, or “off”.",
    "language_set": "Language: English.",
    "time_of_day_set": "Preferred time of day: {time_of_day}.",
    "morning": "morning",
    "day": "day",
    "evening": "evening",
    "messenger_muted": "{messenger} messages are off. They will come another way if you have one (your other messenger, or email).",
    "messenger_unmuted": "{messenger} messages are on again.",
    "choose_button": "Please tap one of the buttons above, or send /cancel.",
    "cancelled": "Cancelled; nothing changed.",
    # leads
    "lead_only": "Only team leads can do that.",
    "who_usage": "Send /who and part of the event's title, e.g. /who sync",
    "who_none": "No upcoming event matches “{text}”.",
    "who_board": (
        "{title}, {when}\n"
        "Going {going_n}{going}\nNot going {not_going_n}{not_going}\n"
        "Maybe {maybe_n}{maybe}\nSilent {silent_n}{silent}"
    ),
    "remind_usage": "Send /remind, a group or #tag, then the text, e.g. /remind Backend Deploy at 5",
    "remind_unknown": "There is no group or tag called “{name}”.",
    "remind_confirm": Plural(
        "en",
        count="count",
        one="Send this to {count} person in {target}?\n\n{text}",
        other="Send this to {count} people in {target}?\n\n{text}",
    ),
    "remind_empty": "Nobody in {target} can get messages right now; nothing was sent.",
    "remind_send": "Send",
    "remind_cancel": "Cancel",
    "remind_queued": Plural(
        "en", count="count", one="Sending to {count} person.", other="Sending to {count} people."
    ),
    "remind_bad": "The text has a problem: {error}",
    # core's errors by their stable code (bot/errors.py)
    "error_not_found": "This was not found: it may have been deleted meanwhile.",
    "error_forbidden": "Your role does not allow this.",
    "error_unauthorized": "I do not know you yet: open your invite link first.",
    "error_invalid": "Please check “{field}”: {message}",
    "error_conflict": "“{field}”: {message}",
    # group chats
    "chat_link_usage": "Send /link and the name of a group, e.g. /link Backend",
    "chat_linked": "This chat is now linked to the group {group}: its events will be announced here.",
    "chat_unlinked": "This chat is no longer linked to a group.",
    "chat_not_linked": "This chat is not linked to a group.",
    "chat_lead_only": "Only a team lead can link this chat.",
    "chat_no_group": "There is no group called “{name}”.",
    "chat_other_workspace": "This chat is linked to another team; a lead there can /unlink it.",
    "chat_added": "Hi! A team lead can link this chat to a group: /link <group name>.",
    "chat_saved": "Saved: {answer}",
    "chat_not_member": "You are not in this team; ask a lead for an invite.",
    "chat_not_invited": "This event is not for you.",
    "chat_closed": "Answers for {title} are closed.",
    "chat_counts": "Going {going} · Not going {not_going} · Maybe {maybe}",
    # code words and the rest
    "not_member": ("You are not in a team here yet. Open the invite link your team lead sent you."),
    "unknown_command": "I do not know that command. /help lists what I can do.",
    "free_text": "I understand commands and buttons; /help lists them.",
    "words_recorded": "Got it: {answer} — {title}. You can change it until the deadline.",
    "words_chosen": "Got it: {label}.",
    "words_unclear": "I am not sure I understood. Please tap one:",
}

RU: Words = {
    "joined": "Здравствуйте, {name}! Теперь вы в команде «{workspace}».",
    "welcome_back": "С возвращением, {name}! Вы в команде «{workspace}».",
    "not_yours": (
        "Это приглашение сделано для другого человека, с вашего аккаунта им воспользоваться "
        "нельзя. Попросите у руководителя свою ссылку."
    ),
    "lead_not_yours": (
        "Кто-то другой ({who}) попытался воспользоваться личным приглашением для {member}. "
        "Отказано, ничего не изменилось."
    ),
    "account_in_use": "Ваш аккаунт {messenger} уже привязан к участнику {name} в «{workspace}».",
    "expired": "Срок приглашения истёк. Попросите у руководителя новое.",
    "used_up": "Приглашение уже использовано. Попросите у руководителя новое.",
    "revoked": "Приглашение отозвано. Попросите у руководителя новое.",
    "unknown": (
        "Не узнаю это приглашение. Проверьте, что ссылка скопирована целиком, "
        "или попросите у руководителя новую."
    ),
    "stranger": (
        "Здравствуйте! Я vestnik, бот напоминаний вашей команды. Чтобы присоединиться, "
        "откройте ссылку-приглашение от руководителя."
    ),
    "hello_member": "Здравствуйте, {name}! /events покажет ближайшие события, /help — всё, что я умею.",
    "ask_timezone": (
        "В каком вы часовом поясе? Пришлите город (Москва, Berlin) или название пояса "
        "(Europe/Moscow) — или оставьте {zone}."
    ),
    "keep_zone": "Оставить {zone}",
    "timezone_set": "Часовой пояс: {zone}. Сейчас там {local}.",
    "timezone_unknown": (
        "Не знаю часовой пояс «{text}». Пришлите город, например Москва, или пояс, "
        "например Europe/Moscow."
    ),
    "timezone_pick": "Под «{text}» подходит несколько мест. Выберите своё:",
    "help": (
        "Что я умею:\n"
        "/events — ваши ближайшие события и ваши ответы\n"
        "/next — ближайшее событие\n"
        "/settings — часовой пояс, тихие часы, язык, время дня, сообщения в {messenger}\n"
        "/calendar — ссылка, чтобы события появились в вашем календаре\n"
        "/unsubscribe — отключить напоминания (о событиях, куда вы идёте, я всё равно напомню)\n"
        "/resubscribe — включить напоминания снова"
    ),
    "help_lead": (
        "Для руководителей:\n"
        "/who <событие> — кто идёт, не идёт, возможно, молчит\n"
        "/remind <группа или #метка> <текст> — быстрое сообщение всем в ней"
    ),
    "events_title": "Ваши ближайшие события:",
    "events_none": "В ближайшие 60 дней ничего не запланировано.",
    "next": "Ближайшее: {title}, {when}{where}.",
    "answer_line": "Ваш ответ: {answer}.",
    "answer_missing": "Вы ещё не ответили.",
    "answer_by": "Ответьте, пожалуйста, до {deadline}.",
    "going": "иду",
    "not_going": "не иду",
    "maybe": "возможно",
    "calendar_new": (
        "Ваш личный календарь (ссылку никому не передавайте):\n{url}\n\n"
        "Apple Календарь, Outlook: {webcal}\n"
        "Google Календарь: Настройки → Добавить календарь → По URL, вставьте первую ссылку."
    ),
    "calendar_exists": (
        "У вас уже есть ссылка на календарь (создана {created}). Из соображений безопасности "
        "она больше не показывается. Нажмите ниже, чтобы получить новую; старая перестанет работать."
    ),
    "calendar_rotate": "Новая ссылка",
    "unsubscribed": (
        "Готово: напоминаний больше не будет. О событиях, куда вы идёте, я всё равно напомню. "
        "/resubscribe включит их снова."
    ),
    "already_unsubscribed": "Вы уже отписаны. /resubscribe включит напоминания снова.",
    "resubscribed": "Напоминания снова включены.",
    "already_subscribed": "Напоминания уже включены.",
    "settings": (
        "Ваши настройки:\n"
        "Часовой пояс: {zone}\n"
        "Тихие часы: {quiet}\n"
        "Язык: {language}\n"
        "Удобное время дня: {time_of_day}\n"
        "Сообщения в {messenger}: {on_off}"
    ),
    "quiet_none": "нет",
    "on": "включены",
    "off": "выключены (только другие пути)",
    "btn_timezone": "Часовой пояс",
    "btn_quiet": "Тихие часы",
    "btn_language": "Язык",
    "btn_time_of_day": "Время дня",
    "btn_messenger_off": "Выключить {messenger}",
    "btn_messenger_on": "Включить {messenger}",
    "ask_quiet": "Пришлите тихие часы двумя временами, например 22:00-08:00. «нет» — убрать их.",
    "quiet_set": "Тихие часы: {quiet}. Несрочные сообщения подождут их окончания.",
    "quiet_off": "Тихие часы убраны.",
    "quiet_bad": "Не понял «{text}». Пришлите два времени, например 22:00-08:00, или «нет».",
    "language_set": "Язык: русский.",
    "time_of_day_set": "Удобное время дня: {time_of_day}.",
    "morning": "утро",
    "day": "день",
    "evening": "вечер",
    "messenger_muted": "Сообщения в {messenger} выключены. Они придут другим путём, если он есть (другой мессенджер или почта).",
    "messenger_unmuted": "Сообщения в {messenger} снова включены.",
    "choose_button": "Нажмите одну из кнопок выше или отправьте /cancel.",
    "cancelled": "Отменено, ничего не изменилось.",
    "lead_only": "Это могут только руководители команды.",
    "who_usage": "Отправьте /who и часть названия события, например /who планёрка",
    "who_none": "Нет ближайшего события, похожего на «{text}».",
    "who_board": (
        "{title}, {when}\n"
        "Идут {going_n}{going}\nНе идут {not_going_n}{not_going}\n"
        "Возможно {maybe_n}{maybe}\nМолчат {silent_n}{silent}"
    ),
    "remind_usage": (
        "Отправьте /remind, группу или #метку и текст, например /remind Backend Деплой в 17:00"
    ),
    "remind_unknown": "Нет группы или метки «{name}».",
    "remind_confirm": Plural(
        "ru",
        count="count",
        one="Отправить это {count} участнику ({target})?\n\n{text}",
        few="Отправить это {count} участникам ({target})?\n\n{text}",
        many="Отправить это {count} участникам ({target})?\n\n{text}",
        other="Отправить это {count} участникам ({target})?\n\n{text}",
    ),
    "remind_empty": "Сейчас никто в {target} не может получить сообщение; ничего не отправлено.",
    "remind_send": "Отправить",
    "remind_cancel": "Отмена",
    "remind_queued": Plural(
        "ru",
        count="count",
        one="Отправляю {count} участнику.",
        few="Отправляю {count} участникам.",
        many="Отправляю {count} участникам.",
        other="Отправляю {count} участникам.",
    ),
    "remind_bad": "С текстом что-то не так: {error}",
    "error_not_found": "Не найдено: возможно, это уже удалили.",
    "error_forbidden": "Ваша роль этого не позволяет.",
    "error_unauthorized": "Я вас пока не знаю: откройте сначала ссылку-приглашение.",
    "error_invalid": "Проверьте «{field}»: {message}",
    "error_conflict": "«{field}»: {message}",
    "chat_link_usage": "Отправьте /link и название группы, например /link Backend",
    "chat_linked": "Этот чат привязан к группе {group}: её события будут объявляться здесь.",
    "chat_unlinked": "Этот чат больше не привязан к группе.",
    "chat_not_linked": "Этот чат не привязан к группе.",
    "chat_lead_only": "Привязать чат может только руководитель команды.",
    "chat_no_group": "Нет группы «{name}».",
    "chat_other_workspace": "Этот чат привязан к другой команде; отвязать его может её руководитель.",
    "chat_added": "Здравствуйте! Руководитель может привязать чат к группе: /link <название группы>.",
    "chat_saved": "Сохранено: {answer}",
    "chat_not_member": "Вы не в этой команде; попросите у руководителя приглашение.",
    "chat_not_invited": "Это событие не для вас.",
    "chat_closed": "Ответы на «{title}» больше не принимаются.",
    "chat_counts": "Идут {going} · Не идут {not_going} · Возможно {maybe}",
    "not_member": "Вы пока не в команде. Откройте ссылку-приглашение от руководителя.",
    "unknown_command": "Не знаю такой команды. /help покажет, что я умею.",
    "free_text": "Я понимаю команды и кнопки; /help покажет их список.",
    "words_recorded": "Понял: {answer} — {title}. Ответ можно изменить до срока.",
    "words_chosen": "Понял: {label}.",
    "words_unclear": "Не уверен, что понял. Нажмите, пожалуйста, кнопку:",
}

TEXTS = {"en": EN, "ru": RU}


def locale_of(member_locale: str | None, language_code: str | None) -> str:
    """The member's own choice, else Telegram's language, else English."""
    if member_locale in TEXTS:
        return member_locale
    if language_code and language_code.lower().startswith(("ru", "uk", "be", "kk")):
        return "ru"
    return "en"


MESSENGER_NAMES = {"telegram": "Telegram", "max": "MAX"}


class Texts:
    """The bot's words in one language, on one messenger: ``texts("key", name=...)``; a text may
    name the messenger it is read in (``{messenger}``)."""

    def __init__(self, locale: str, messenger: str = "telegram") -> None:
        self.locale = locale if locale in TEXTS else "en"
        self.messenger = messenger
        self._table = TEXTS[self.locale]

    def has(self, key: str) -> bool:
        return key in self._table

    def other(self, locale: str) -> Texts:
        """The same messenger's words in another language."""
        return Texts(locale, self.messenger)

    def __call__(self, key: str, **values: Any) -> str:
        name = MESSENGER_NAMES.get(str(self.messenger), str(self.messenger))
        return self._table[key].format(**({"messenger": name} | values))
