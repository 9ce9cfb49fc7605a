"""Shared settings of the browser tests: Debian's Chromium, launched headless by Playwright."""

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def ingest_over_http(live_server, token, body):
    """POST one generic event to the live server, as a monitoring tool would."""
    import httpx

    response = httpx.post(
        f"{live_server.url}/api/v1/ingest/events", json=body, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 202, response.text


def screenshot_dir():
    """var/screenshots, where browser tests leave what they saw."""
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "var" / "screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path
