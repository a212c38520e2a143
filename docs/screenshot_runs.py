"""Photograph the MLflow runs table of one experiment: the `pipeline` runs only, sorted by
their test accuracy, with the headline metrics as columns (used by docs/screenshots.sh).

The sort and the filter are URL parameters of the UI; the columns are not, so this drives
headless Chromium over its DevTools protocol (aiohttp's websocket client, which DVC
installs): open the page, untick the wide default columns and tick the headline ones in the column selector, close the assistant
panel, take the picture.

    python docs/screenshot_runs.py CHROMIUM PORT EXPERIMENT_ID OUT.png
"""
from __future__ import annotations

import asyncio
import base64
import json
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

import aiohttp

HIDDEN = ["Dataset", "Source", "Models"]  # shown by default; toggled off to make room
COLUMNS = ["test_accuracy", "test_macro_f1", "best_val_accuracy", "params", "search_trainings", "search_seconds",
           "train.epochs", "automl.dvc_experiment", "automl.stages"]


def runs_url(port: int, experiment: str) -> str:
    query = urllib.parse.urlencode({
        "workflowType": "machine_learning", "searchFilter": "tags.`automl.pipeline` = 'true'",
        "orderByKey": "metrics.`test_accuracy`", "orderByAsc": "false", "startTime": "ALL",
        "lifecycleFilter": "Active", "modelVersionFilter": "All Runs",
    }, quote_via=urllib.parse.quote)
    return f"http://127.0.0.1:{port}/#/experiments/{experiment}/runs?{query}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def photograph(chromium: str, url: str, out: str, width: int = 1700, height: int = 600) -> None:
    port = free_port()
    with tempfile.TemporaryDirectory() as profile:
        browser = subprocess.Popen([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                                    "--hide-scrollbars", f"--user-data-dir={profile}", f"--window-size={width},{height}",
                                    f"--remote-debugging-port={port}", "about:blank"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            await _drive(port, url, out)
        finally:
            browser.terminate()
            browser.wait(timeout=30)


async def _drive(port: int, url: str, out: str) -> None:
    deadline = time.time() + 60
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json", timeout=2) as response:
                page = next(t for t in json.load(response) if t["type"] == "page")
            break
        except (OSError, StopIteration):
            if time.time() > deadline:
                raise SystemExit("screenshots: chromium did not start")
            time.sleep(0.3)
    async with aiohttp.ClientSession() as session, session.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0) as ws:
        counter = 0

        async def call(method: str, **params):
            nonlocal counter
            counter += 1
            await ws.send_json({"id": counter, "method": method, "params": params})
            while True:
                message = await ws.receive_json()
                if message.get("id") == counter:
                    return message.get("result", {})

        async def js(expression: str):
            result = await call("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True)
            return result.get("result", {}).get("value")

        async def until(expression: str, seconds: float = 60) -> None:
            end = time.time() + seconds
            while not await js(expression):
                if time.time() > end:
                    raise SystemExit(f"screenshots: the page never showed: {expression}")
                await asyncio.sleep(0.5)

        await call("Page.navigate", url=url)
        await until("document.body && document.body.innerText.includes('matching run')")
        # The toolbar renders after the table, and a click in the selector may close it:
        # (re)open it before each column.
        opened = ("!!document.querySelector('[data-component-id$=\"column_selector\"]') || "
                  "void [...document.querySelectorAll('button')].find(b => b.innerText.trim() == 'Columns')?.click()")
        for name in HIDDEN + COLUMNS:
            await until(opened)
            await asyncio.sleep(0.5)
            await js("[...document.querySelectorAll('[data-component-id$=\"column_selector\"] *')]"
                     f".find(e => e.children.length == 0 && e.textContent.trim() == {json.dumps(name)})?.click()")
            await asyncio.sleep(0.5)
        await call("Input.dispatchKeyEvent", type="keyDown", key="Escape", code="Escape", windowsVirtualKeyCode=27)
        await call("Input.dispatchKeyEvent", type="keyUp", key="Escape", code="Escape", windowsVirtualKeyCode=27)
        await js("[...document.querySelectorAll('button[aria-label=\"Close\"]')].forEach(b => b.click())")
        await asyncio.sleep(2)
        shot = await call("Page.captureScreenshot", format="png")
        with open(out, "wb") as handle:
            handle.write(base64.b64decode(shot["data"]))


if __name__ == "__main__":
    chromium, port, experiment, out = sys.argv[1:5]
    asyncio.run(photograph(chromium, runs_url(int(port), experiment), out))
    print(f"screenshots: wrote {out}")
