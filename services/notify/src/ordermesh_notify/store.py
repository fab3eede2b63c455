"""SQL of the notify service: order contacts, shop mail settings and templates, and the mail log."""

import json
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import UUID

import asyncpg

from ordermesh_servicekit.outbox import Effect, OutgoingMessage, handled_rows

_MAIL_COLUMNS = "mail_id, order_id, kind, cause_id, status, recipient, subject, attempts, reason, template, created_at, updated_at, sent_at"


async def contact(conn: asyncpg.Connection, order_id: UUID) -> dict[str, Any] | None:
    """Who to mail about an order, and what the order holds for templates."""
    row = await conn.fetchrow("SELECT * FROM contacts WHERE order_id = $1", order_id)
    if row is None:
        return None
    return {**dict(row), "summary": json.loads(row["summary"]), "mail_texts": json.loads(row["mail_texts"])}


async def set_inserted_text(conn: asyncpg.Connection, order_id: UUID, shop_id: str, text: str | None) -> bool:
    """Sets the text inserted into the order's later mails; False if the order is unknown to notify."""
    done = await conn.execute(
        "UPDATE contacts SET inserted_text = $3 WHERE order_id = $1 AND shop_id = $2", order_id, shop_id, text
    )
    return done.endswith(" 1")


async def mail_setup(
    conn: asyncpg.Connection, order_id: UUID, kind: str, *, device: str | None = None, seen_id: UUID | None = None
) -> dict[str, Any] | None:
    """Everything one mail needs, in one round trip: the order's contact, the shop's settings (None columns: the
    defaults), the shop's own template for the kind and device (the contact's device unless given; one for the device
    before one for 'any'), and whether the inbox holds `seen_id`. None if the order is unknown to notify."""
    row = await conn.fetchrow(
        """
        SELECT c.*, s.language, s.signature, s.encoding, s.disabled_kinds,
               t.subject AS template_subject, t.text_body AS template_text, t.html_body AS template_html,
               t.device AS template_device,
               EXISTS (SELECT 1 FROM inbox WHERE message_id = $4) AS seen
        FROM contacts c
        LEFT JOIN shop_mail_settings s ON s.shop_id = c.shop_id
        LEFT JOIN LATERAL (
            SELECT subject, text_body, html_body, device FROM mail_templates
            WHERE shop_id = c.shop_id AND kind = $2 AND device IN (coalesce($3::text, c.device), 'any')
            ORDER BY device = 'any' LIMIT 1
        ) t ON true
        WHERE c.order_id = $1
        """,
        order_id, kind, device, seen_id,
    )
    if row is None:
        return None
    return {**dict(row), "summary": json.loads(row["summary"]), "mail_texts": json.loads(row["mail_texts"])}


def edit_kept(order_id: UUID, summary: dict[str, Any]) -> Effect:
    """Keeps the order's lines and totals as of an edit, unless a later (or the same) edit is kept already, with the
    names of every sku the order ever had (nothing if the order is unknown to notify)."""
    return (
        """
        kept AS (
            UPDATE contacts SET summary = CASE
                WHEN coalesce((summary->>'edit_no')::int, 0) < ($2::jsonb->>'edit_no')::int
                THEN $2::jsonb || jsonb_build_object('names', coalesce(summary->'names', '{}'::jsonb) || ($2::jsonb->'names'))
                ELSE summary END
            WHERE order_id = $1 AND EXISTS (SELECT FROM seen)
        )
        """,
        [order_id, json.dumps(summary)],
    )


def together(*effects: Effect) -> Effect:
    """Effects written in one statement, in order (each one's parameters renumbered after the ones before it)."""
    parts: list[str] = []
    arguments: list[Any] = []
    for sql, args in effects:
        offset = len(arguments)
        parts.append(re.sub(r"\$(\d+)", lambda number: f"${int(number.group(1)) + offset}", sql))
        arguments += args
    return ", ".join(part.strip() for part in parts), arguments


async def lock_shop_settings(conn: asyncpg.Connection, shop_id: str) -> asyncpg.Record | None:
    """The shop's mail settings row, locked until the transaction ends (None: the shop uses the defaults)."""
    return await conn.fetchrow(
        "SELECT language, signature, encoding, disabled_kinds FROM shop_mail_settings WHERE shop_id = $1 FOR UPDATE", shop_id
    )


async def shop_settings(conn: asyncpg.Connection, shop_id: str) -> asyncpg.Record | None:
    """The shop's mail settings row with who set them when (None: the shop uses the defaults)."""
    return await conn.fetchrow(
        "SELECT language, signature, encoding, disabled_kinds, updated_by, updated_at FROM shop_mail_settings WHERE shop_id = $1",
        shop_id,
    )


async def save_shop_settings(
    conn: asyncpg.Connection, *, shop_id: str, language: str, signature: str, encoding: str, disabled_kinds: list[str], updated_by: str
) -> None:
    """Replaces a shop's mail settings."""
    await conn.execute(
        """
        INSERT INTO shop_mail_settings (shop_id, language, signature, encoding, disabled_kinds, updated_by)
        VALUES ($1, $2, $3, $4, $5, $6)
        ON CONFLICT (shop_id) DO UPDATE SET language = $2, signature = $3, encoding = $4, disabled_kinds = $5,
            updated_by = $6, updated_at = now()
        """,
        shop_id, language, signature, encoding, disabled_kinds, updated_by,
    )


async def save_template(
    conn: asyncpg.Connection, *, shop_id: str, kind: str, device: str, subject: str, text: str, html: str | None, updated_by: str
) -> None:
    """Saves (or replaces) a shop's template for a kind and device."""
    await conn.execute(
        """
        INSERT INTO mail_templates (shop_id, kind, device, subject, text_body, html_body, updated_by)
        VALUES ($1, $2, $3, $4, $5, $6, $7)
        ON CONFLICT (shop_id, kind, device) DO UPDATE SET subject = $4, text_body = $5, html_body = $6,
            updated_by = $7, updated_at = now()
        """,
        shop_id, kind, device, subject, text, html, updated_by,
    )


@dataclass(frozen=True)
class TurnedOff:
    """What a claim needs to settle, by itself, a mail of a kind the shop turned off: the kinds off for a shop without
    settings, the reason to log, the cause's shop (another shop's contact settles nothing), and the cause's inbox row
    (`message_id` on `topic`) and event announcing the mail, written only when the claim settles it."""

    off_by_default: list[str]
    reason: str
    shop_id: str
    message_id: UUID
    topic: str
    announced: OutgoingMessage


async def claim_mail(
    conn: asyncpg.Connection,
    *,
    mail_id: UUID,
    order_id: UUID,
    kind: str,
    cause_id: UUID,
    owner: str,
    claim_seconds: float,
    seen_id: UUID | None = None,
    new_contact: dict[str, Any] | None = None,
    turned_off: TurnedOff | None = None,
) -> dict[str, Any] | None:
    """The mail's intent, in one statement: keeps `new_contact` (the order's contact as its OrderAccepted gives it;
    a contact kept already stays), loads what the mail needs (as `mail_setup`) and claims the mail for `owner` for
    `claim_seconds` unless the inbox holds `seen_id`. None if the order is unknown to notify.

    Besides the setup's columns, returns `seen`, `claimed` (whether the caller may decide and send it now),
    `attempts` (claims so far, this one included), and the mail's `previous` status (None if new), `reason` and
    `holder` of its claim. A mail already `sent`, `failed` or `not_applicable` keeps its status and is not claimed;
    one `sending` under another owner's live claim is not claimed either (that owner may be sending it right now).
    One statement, so two replicas claiming at once cannot both win.

    With `turned_off`, a mail the claim would take whose kind the shop turned off is `settled` instead: logged
    `not_applicable` (its attempts as they were, no claim held), with the cause's inbox row and announcing event.
    """
    contact = new_contact or {}
    arguments = [
        order_id, kind, cause_id, mail_id, seen_id, owner, float(claim_seconds),
        contact.get("shop_id"), contact.get("external_order_no"), contact.get("email"), contact.get("name"),
        contact.get("device"), json.dumps(contact.get("summary")), json.dumps(contact.get("mail_texts") or {}),
        *((turned_off.off_by_default, turned_off.reason, turned_off.shop_id) if turned_off is not None else (None, None, None)),
    ]
    settles, settled = "", "false"
    if turned_off is not None:
        rows, row_arguments = handled_rows(
            len(arguments) + 1, turned_off.message_id, turned_off.topic, [turned_off.announced],
            when="EXISTS (SELECT FROM claim WHERE settled)",
        )
        settles, settled = f", {rows}", "EXISTS (SELECT FROM seen)"
        arguments += row_arguments
    row = await conn.fetchrow(
        f"""
        WITH kept AS (
            INSERT INTO contacts (order_id, shop_id, external_order_no, email, name, device, summary, mail_texts)
            SELECT $1, $8, $9, $10, $11, $12, $13::jsonb, $14::jsonb WHERE $8::text IS NOT NULL
            ON CONFLICT DO NOTHING
            RETURNING *
        ), c AS (
            SELECT * FROM kept
            UNION ALL
            SELECT * FROM contacts WHERE order_id = $1 AND NOT EXISTS (SELECT 1 FROM kept)
        ), handled AS (
            SELECT EXISTS (SELECT 1 FROM inbox WHERE message_id = $5) AS seen
        ), before AS (
            SELECT status, reason, claimed_by FROM mail_log WHERE order_id = $1 AND kind = $2 AND cause_id = $3
        ), decided AS (  -- why_not_applicable's first rule: the shop turned the kind off (no settings: the defaults)
            SELECT c.email, coalesce(c.shop_id = $17 AND $2 = ANY (coalesce(s.disabled_kinds, $15::text[])), false) AS off
            FROM c LEFT JOIN shop_mail_settings s ON s.shop_id = c.shop_id
        ), claim AS (
            INSERT INTO mail_log (mail_id, order_id, kind, cause_id, status, reason, recipient, attempts, claimed_by, claimed_until)
            SELECT $4, $1, $2, $3, CASE WHEN off THEN 'not_applicable' ELSE 'sending' END,
                   CASE WHEN off THEN $16::text END, email, CASE WHEN off THEN 0 ELSE 1 END, $6,
                   CASE WHEN NOT off THEN now() + make_interval(secs => $7) END
            FROM decided WHERE NOT (SELECT seen FROM handled)
            ON CONFLICT (order_id, kind, cause_id) DO UPDATE
                SET status = EXCLUDED.status, reason = EXCLUDED.reason, attempts = mail_log.attempts + EXCLUDED.attempts,
                    claimed_by = EXCLUDED.claimed_by, claimed_until = EXCLUDED.claimed_until, updated_at = now()
                WHERE mail_log.status = 'sending'
                  AND (mail_log.claimed_until IS NULL OR mail_log.claimed_until <= now() OR mail_log.claimed_by = EXCLUDED.claimed_by)
            RETURNING attempts, status = 'not_applicable' AS settled
        ){settles}
        SELECT c.*, s.language, s.signature, s.encoding, s.disabled_kinds,
               t.subject AS template_subject, t.text_body AS template_text, t.html_body AS template_html,
               t.device AS template_device,
               (SELECT seen FROM handled) AS seen, EXISTS (SELECT 1 FROM claim) AS claimed, (SELECT attempts FROM claim) AS attempts,
               (SELECT status FROM before) AS previous, (SELECT reason FROM before) AS reason,
               (SELECT claimed_by FROM before) AS holder, {settled} AS settled
        FROM c
        LEFT JOIN shop_mail_settings s ON s.shop_id = c.shop_id
        LEFT JOIN LATERAL (
            SELECT subject, text_body, html_body, device FROM mail_templates
            WHERE shop_id = c.shop_id AND kind = $2 AND device IN (c.device, 'any')
            ORDER BY device = 'any' LIMIT 1
        ) t ON true
        """,
        *arguments,
    )
    if row is None:
        return None
    return {**dict(row), "summary": json.loads(row["summary"]), "mail_texts": json.loads(row["mail_texts"])}


_FINISH = """
    UPDATE mail_log SET status = $2, reason = $3, updated_at = now(), sent_at = CASE WHEN $2 = 'sent' THEN now() END,
                        claimed_until = NULL, attempts = CASE WHEN $4 THEN attempts ELSE attempts - 1 END,
                        subject = $5, body = $6, html = $7, variables = $8::jsonb, template = $9
    WHERE mail_id = $1
"""


@dataclass(frozen=True)
class MailEnd:
    """How a claimed mail ended, with what was sent when it went to the server (`sent`); a mail that did not (not
    applicable, no valid address, a template problem) gives its claim back uncounted as an attempt."""

    mail_id: UUID
    status: str
    sent: bool
    reason: str | None = None
    subject: str | None = None
    body: str | None = None
    html: str | None = None
    variables: dict[str, Any] | None = None
    template: str | None = None

    def _arguments(self) -> list[Any]:
        return [
            self.mail_id, self.status, self.reason, self.sent, self.subject, self.body, self.html,
            json.dumps(self.variables, default=str) if self.variables is not None else None, self.template,
        ]


async def finish_mail(conn: asyncpg.Connection, end: MailEnd) -> None:
    """Records how a claimed mail ended, on its own."""
    await conn.execute(_FINISH, *end._arguments())


def mail_finished(end: MailEnd) -> Effect:
    """`finish_mail` as an effect of the cause's unit of work."""
    return f"finished AS ({_FINISH} AND EXISTS (SELECT FROM seen))", end._arguments()


async def mail(conn: asyncpg.Connection, mail_id: UUID) -> asyncpg.Record | None:
    """One mail of the log, with its kept content."""
    return await conn.fetchrow(f"SELECT {_MAIL_COLUMNS}, body, html, body_purged_at FROM mail_log WHERE mail_id = $1", mail_id)


async def mails_of_order(conn: asyncpg.Connection, order_id: UUID) -> list[asyncpg.Record]:
    """The mail log of one order, oldest first (without bodies)."""
    return await conn.fetch(f"SELECT {_MAIL_COLUMNS} FROM mail_log WHERE order_id = $1 ORDER BY created_at, mail_id", order_id)


async def last_variables(conn: asyncpg.Connection, order_id: UUID, kind: str) -> dict[str, Any] | None:
    """The variables the order's latest mail of `kind` was rendered from (for bulk sends and previews)."""
    raw = await conn.fetchval(
        """
        SELECT variables FROM mail_log WHERE order_id = $1 AND kind = $2 AND variables IS NOT NULL
        ORDER BY created_at DESC LIMIT 1
        """,
        order_id, kind,
    )
    return json.loads(raw) if raw else None


async def purge_bodies(conn: asyncpg.Connection, older_than: timedelta) -> int:
    """Forgets the content (text, HTML, variables) of mails older than `older_than`; the log rows stay. Returns how many."""
    done = await conn.execute(
        """
        UPDATE mail_log SET body = NULL, html = NULL, variables = NULL, body_purged_at = now()
        WHERE created_at < now() - $1::interval AND body_purged_at IS NULL
        """,
        older_than,
    )
    return int(done.split()[-1])
