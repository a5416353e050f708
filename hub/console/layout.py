"""The console's HTML frame: one stylesheet, one first-party script, navigation, landmarks."""

from __future__ import annotations

from html import escape

from .i18n import Words

NAV = ("overview", "participants", "log", "refusals", "retention", "deliveries")
PATHS = {
    "overview": "/",
    "participants": "/participants",
    "log": "/log",
    "refusals": "/refusals",
    "retention": "/retention",
    "deliveries": "/deliveries",
}


def page(words: Words, current: str, body: str, *, csrf: str, refresh: bool = False) -> str:
    """A whole page; ``refresh`` asks the first-party script to reload it every few seconds."""
    links = "".join(
        f'<li><a href="{PATHS[key]}"'
        + (' aria-current="page"' if key == current else "")
        + f">{words[key]}</a></li>"
        for key in NAV
    )
    refresh_attribute = ' data-refresh="3"' if refresh else ""
    return (
        f'<!doctype html><html lang="{words.locale}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{words[current]} · {words['title']}</title>"
        '<link rel="stylesheet" href="/static/console.css">'
        '<script src="/static/console.js" defer></script></head>'
        f"<body{refresh_attribute}>"
        f'<a class="skip" href="#main">{words["skip"]}</a>'
        f'<header><p class="brand">{words["title"]}</p>'
        f'<nav aria-label="{words["title"]}"><ul>{links}</ul></nav>'
        f'<form method="post" action="/logout" class="logout">{csrf_field(csrf)}'
        f'<button type="submit">{words["logout"]}</button></form></header>'
        f'<main id="main" tabindex="-1"><h1>{words[current]}</h1>{body}'
        f'<p class="note">{words["times_local"]}</p></main></body></html>'
    )


def csrf_field(token: str) -> str:
    return f'<input type="hidden" name="csrf" value="{escape(token)}">'


def facts(rows: list[tuple[str, str, str]]) -> str:
    """A definition list of (label, metric name, value HTML); tests find values by metric."""
    items = "".join(
        f'<div><dt>{label}</dt><dd data-metric="{metric}">{value}</dd></div>'
        for label, metric, value in rows
    )
    return f'<dl class="facts">{items}</dl>'


def table(caption: str, head: list[str], rows: list[list[str]], *, metric: str = "") -> str:
    """A data table; cells are HTML already escaped by the caller."""
    header = "".join(f'<th scope="col">{h}</th>' for h in head)
    body = "".join(
        "<tr>" + f'<th scope="row">{r[0]}</th>' + "".join(f"<td>{c}</td>" for c in r[1:]) + "</tr>"
        for r in rows
    )
    marker = f' data-table="{metric}"' if metric else ""
    return (
        f"<table{marker}><caption>{caption}</caption><thead><tr>{header}</tr></thead>"
        f"<tbody>{body}</tbody></table>"
    )


def login_page(words: Words, message: str = "") -> str:
    alert = f'<p class="alert" role="alert">{message}</p>' if message else ""
    return (
        f'<!doctype html><html lang="{words.locale}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{words['login']} · {words['title']}</title>"
        '<link rel="stylesheet" href="/static/console.css"></head><body>'
        f'<main id="main" class="login"><h1>{words["title"]}</h1>{alert}'
        '<form method="post" action="/login">'
        f'<label for="name">{words["name"]}</label>'
        '<input id="name" name="name" autocomplete="username" required autofocus>'
        f'<label for="password">{words["password"]}</label>'
        '<input id="password" name="password" type="password" '
        'autocomplete="current-password" required>'
        f'<button type="submit">{words["login"]}</button></form></main></body></html>'
    )
