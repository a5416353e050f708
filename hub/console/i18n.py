"""The console's words in Dutch and English, and its times: local time written in ISO 8601."""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape

# Each key's words, Dutch first, then English.
WORDS: dict[str, tuple[str, str]] = {
    "title": ("Operatorconsole", "Operator console"),
    "skip": ("Naar de inhoud", "Skip to content"),
    "overview": ("Overzicht", "Overview"),
    "participants": ("Deelnemers", "Participants"),
    "log": ("Log", "Log"),
    "refusals": ("Weigeringen", "Refusals"),
    "retention": ("Bewaartermijn", "Retention"),
    "deliveries": ("Afleveringen", "Deliveries"),
    "logout": ("Afmelden", "Sign out"),
    "login": ("Aanmelden", "Sign in"),
    "name": ("Naam", "Name"),
    "password": ("Wachtwoord", "Password"),
    "login_failed": ("Naam of wachtwoord onjuist.", "Wrong name or password."),
    "login_throttled": (
        "Te veel mislukte pogingen; probeer over enkele minuten opnieuw.",
        "Too many failed attempts; try again in a few minutes.",
    ),
    "serving": ("Hub bedient", "Hub serving"),
    "yes_since": ("ja, sinds", "yes, since"),
    "store": ("Opslag", "Store"),
    "reachable": ("bereikbaar", "reachable"),
    "log_size": ("Loggrootte (bladeren)", "Log size (leaves)"),
    "last_checkpoint": ("Laatste checkpoint (grootte)", "Last checkpoint (size)"),
    "cosignatures": ("Getuigenhandtekeningen", "Witness cosignatures"),
    "cosigned_checkpoint": (
        "Laatste checkpoint met getuigen (grootte)",
        "Last witnessed checkpoint (size)",
    ),
    "pending": ("Wachtende afleveringen", "Pending deliveries"),
    "refusals_24h": ("Weigeringen, laatste 24 u", "Refusals, last 24 h"),
    "connected_now": ("Nu verbonden", "Connected now"),
    "role": ("Rol", "Role"),
    "organisation": ("Organisatie (KBO)", "Organisation (KBO)"),
    "key_ids": ("Sleutel-id's", "Key ids"),
    "valid": ("Geldig", "Valid"),
    "from": ("van", "from"),
    "until": ("tot", "until"),
    "expires_soon": ("verloopt binnen {n} dagen", "expires in {n} days"),
    "expired": ("verlopen", "expired"),
    "revocations": ("Intrekkingen", "Revocations"),
    "revoked_at": ("Ingetrokken op", "Revoked at"),
    "reason": ("Reden", "Reason"),
    "none": ("geen", "none"),
    "yes": ("ja", "yes"),
    "no": ("nee", "no"),
    "participant": ("Deelnemer", "Participant"),
    "count": ("Aantal", "Count"),
    "bytes": ("Bytes", "Bytes"),
    "oldest": ("Oudste", "Oldest"),
    "older_hour": ("> 1 uur", "> 1 hour"),
    "older_day": ("> 1 dag", "> 1 day"),
    "older_week": ("> 7 dagen", "> 7 days"),
    "checkpoints_chart": ("Checkpoints: boomgrootte", "Checkpoints: tree size"),
    "checkpoints_desc": (
        "Grootte van de laatste {n} ondertekende checkpoints, oudste links.",
        "Size of the latest {n} signed checkpoints, oldest on the left.",
    ),
    "verify": ("Log verifiëren", "Verify the log"),
    "verify_start": ("Verificatie starten", "Start verification"),
    "verify_running": ("Verificatie loopt", "Verification running"),
    "verify_ok": ("Log geverifieerd: geen problemen", "Log verified: no problems"),
    "verify_failed": ("Verificatie vond problemen", "Verification found problems"),
    "verify_never": ("Nog niet geverifieerd", "Not verified yet"),
    "verify_progress": ("Voortgang", "Progress"),
    "leaves_checked": ("bladeren gecontroleerd", "leaves checked"),
    "checkpoints_checked": ("checkpoints gecontroleerd", "checkpoints checked"),
    "incremental": (
        "Elke run controleert alleen wat sinds de vorige run bijkwam.",
        "Each run checks only what was added since the previous run.",
    ),
    "refusals_chart": ("Weigeringen per code, per uur (24 u)", "Refusals by code, per hour (24 h)"),
    "refusals_desc": (
        "Gestapelde staven: weigeringen per uur, per foutcode, de laatste 24 uur.",
        "Stacked bars: refusals per hour by error code over the last 24 hours.",
    ),
    "code": ("Code", "Code"),
    "last_24h": ("Laatste 24 u", "Last 24 h"),
    "last_14d": ("Laatste 14 dagen", "Last 14 days"),
    "total": ("Totaal", "Total"),
    "retention_days": ("Bewaartermijn (dagen)", "Retention period (days)"),
    "scheduled": ("Zaken met geplande wissing", "Cases scheduled for purge"),
    "due_now": ("Nu te wissen", "Due now"),
    "due_week": ("Te wissen binnen 7 dagen", "Due within 7 days"),
    "due_month": ("Te wissen binnen 30 dagen", "Due within 30 days"),
    "next_due": ("Volgende wissing", "Next purge due"),
    "last_purge": ("Laatste wissing", "Last purge"),
    "last_purge_rows": ("Rijen bij laatste wissing", "Rows removed by the last purge"),
    "purges_month": ("Wisrondes (30 dagen)", "Purge rounds (30 days)"),
    "rows_month": ("Gewiste rijen (30 dagen)", "Rows removed (30 days)"),
    "never": ("nooit", "never"),
    "queues": ("Wachtrijen per deelnemer", "Queues per participant"),
    "stuck": ("Oudste afleveringen", "Oldest deliveries"),
    "delivery": ("Aflevering", "Delivery"),
    "accepted": ("Aanvaard", "Accepted"),
    "age": ("Leeftijd", "Age"),
    "drop": ("Verwijderen", "Drop"),
    "dropped": (
        "Aflevering {seq} van {pid} verwijderd; gelogd als blad {leaf}.",
        "Delivery {seq} of {pid} dropped; logged as leaf {leaf}.",
    ),
    "drop_gone": ("Die aflevering wacht niet meer.", "That delivery no longer waits."),
    "drop_note": (
        "Verwijderen wordt gelogd met de gekozen reden; de ontvanger krijgt het bericht niet.",
        "A drop is logged with the chosen reason; the recipient will not receive the message.",
    ),
    "reason_undeliverable": ("onbestelbaar", "undeliverable"),
    "reason_recipient_gone": ("ontvanger vertrokken", "recipient gone"),
    "reason_too_old": ("te oud", "too old"),
    "reason_sender_request": ("op vraag van de afzender", "at the sender's request"),
    "nothing_pending": ("Niets wacht.", "Nothing waits."),
    "this_process": ("op dit hubproces", "on this hub process"),
    "times_local": ("Tijden in lokale tijd, ISO 8601.", "Times in local time, ISO 8601."),
    "refresh": ("Vernieuwt automatisch.", "Refreshes automatically."),
}


class Words:
    """The words of one locale; ``w["key"]`` is HTML-escaped text."""

    def __init__(self, locale: str) -> None:
        self.locale = locale
        self._column = 0 if locale == "nl" else 1

    def __getitem__(self, key: str) -> str:
        return escape(WORDS[key][self._column])

    def fmt(self, key: str, **values: object) -> str:
        return escape(self.plain(key, **values))

    def plain(self, key: str, **values: object) -> str:
        """Unescaped, for text that is escaped where it is placed (an SVG title)."""
        return WORDS[key][self._column].format(**values)


def time_html(timestamp: int | None, words: Words) -> str:
    """``<time>`` with the instant in UTC as its machine value, shown in local time, ISO 8601."""
    if timestamp is None:
        return words["never"]
    instant = datetime.fromtimestamp(timestamp, UTC)
    local = instant.astimezone().isoformat(timespec="seconds")
    return f'<time datetime="{instant.isoformat(timespec="seconds")}">{local}</time>'


def age_text(seconds: int) -> str:
    """A compact, language-neutral age: 42 s, 5 min, 3 h, 2 d."""
    if seconds < 60:
        return f"{max(seconds, 0)} s"
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 86_400:
        return f"{seconds // 3600} h"
    return f"{seconds // 86_400} d"
