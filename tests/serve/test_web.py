"""The web chat page in a real headless browser (Debian's chromium via Selenium), and the
sentiment and writer routes, against one open local server (no keys) serving all three apps.

Nothing is downloaded: Selenium is pointed at /usr/bin/chromium and /usr/bin/chromedriver
(`apt-get install chromium chromium-driver`; .ci/run installs them). Without them the browser
test is skipped, saying so.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from tests.apps.sentiment_data import sentences, write_csv
from tests.apps.writer_fixtures import MODEL as WRITER_MODEL
from tests.apps.writer_fixtures import writer_corpus, writer_home  # noqa: F401 - fixtures
from tests.serve.conftest import register

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


@pytest.fixture(scope="module")
def sentiment_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny 3-class sentiment classifier trained in seconds on generated sentences."""
    from appkit.config import load_settings
    from apps.sentiment.train import SentimentOptions, train_sentiment

    root = tmp_path_factory.mktemp("serve-sentiment")
    data = write_csv(root / "labeled.csv", sentences(150, seed=1))
    settings = load_settings(home=root / "home", device="cpu", database_url=f"sqlite:///{root / 'home' / 'appkit.db'}")
    options = SentimentOptions(hidden_size=32, layers=1, heads=2, max_length=32, epochs=3, learning_rate=3e-3,
                               lstm=False, progress=False)
    return train_sentiment(data, name="toy-sentiment", options=options, settings=settings, log=lambda _: None).path


@pytest.fixture(scope="module")
def home(tmp_path_factory, support_model_dir: Path, writer_home: Path, sentiment_model: Path) -> Path:  # noqa: F811
    home = tmp_path_factory.mktemp("serve-web") / "home"
    register(home, "toy-support", "support", support_model_dir)
    register(home, WRITER_MODEL, "writer", writer_home / "models" / WRITER_MODEL)
    register(home, "toy-sentiment", "sentiment", sentiment_model)
    return home


@pytest.fixture(scope="module")
def server(server_factory, home: Path):
    return server_factory(home)  # every app with an active model


@pytest.fixture(scope="module")
def store(home: Path):
    from appkit.config import load_settings
    from appkit.store import open_store

    with open_store(load_settings(home=home)) as s:
        yield s


@pytest.fixture
def browser():
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip("the browser test needs Debian's chromium and chromedriver "
                    "(apt-get install -y chromium chromium-driver); they are not installed here")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must not look for drivers online
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1000,800"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


@pytest.mark.e2e  # a real browser
def test_a_customer_chats_rates_and_is_handed_over_in_the_web_page(server, browser, store):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(server.url + "/")
    assert browser.title == "Support chat"
    wait = WebDriverWait(browser, 60)

    def say(text: str, n: int):
        box = browser.find_element(By.ID, "message")
        box.send_keys(text)
        browser.find_element(By.ID, "send").click()
        def nth_reply(d):  # the n-th finished reply, once it is there
            done = d.find_elements(By.CSS_SELECTOR, 'li[data-role="assistant"][data-done="1"]')
            return done[n - 1] if len(done) >= n else None

        return wait.until(nth_reply)

    reply = say("where is my order?", 1)
    shown = reply.find_element(By.CSS_SELECTOR, ".text").text
    assert "order" in shown.lower()
    conv = store.list_conversations(app="support")[0]
    stored = store.messages(conv.id)
    assert [m.role for m in stored] == ["user", "assistant"] and stored[1].content == shown
    assert reply.get_attribute("data-message-id") == str(stored[1].id)
    assert not browser.find_element(By.ID, "handoff").is_displayed()

    reply.find_element(By.CSS_SELECTOR, "button.rate-up").click()
    wait.until(lambda d: reply.get_attribute("data-rated") == "1")
    assert [f.rating for f in store.feedback_for(conv.id)] == [1]

    say("I want to talk to a real person", 2)
    wait.until(lambda d: d.find_element(By.ID, "handoff").is_displayed())
    assert store.get_conversation(conv.id).status == "escalated"
    assert browser.find_element(By.ID, "status").text == ""  # no error was shown


def test_sentiment_route_gives_the_analyzers_own_probabilities(server, sentiment_model):
    from apps.sentiment.analyzer import SentimentAnalyzer

    texts = ["the delivery was wonderful", "the support team was rude", "my order was ordinary"]
    answer = server.http().post("/v1/sentiment", json={"texts": texts})
    assert answer.status_code == 200
    data = answer.json()["data"]
    local = SentimentAnalyzer.load(sentiment_model).analyze(texts)
    assert [d["label"] for d in data] == [r.label for r in local]
    for d, r in zip(data, local):
        assert d["probabilities"] == pytest.approx(r.probabilities, abs=1e-5)
        assert sum(d["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
    empty = server.http().post("/v1/sentiment", json={"texts": []})
    assert empty.status_code == 400 and empty.json()["error"]["param"] == "texts"


def test_write_route_drafts_from_a_brief_and_stores_it(server, store):
    api = server.http()
    draft = api.post("/v1/write", json={"title": "Why we pair program", "format": "blog", "words": 40, "seed": 3})
    assert draft.status_code == 200, draft.text
    body = draft.json()
    assert body["text"].startswith("# Why we pair program") and body["words"] > 0
    assert store.get_document(body["document_id"]).content == body["text"]
    with api.stream("POST", "/v1/write", json={"title": "Spring sale", "words": 30, "stream": True, "seed": 1}) as r:
        events = [json.loads(line[6:]) for line in r.iter_lines() if line.startswith("data: ")]
    assert events[-1]["type"] == "done"
    assert "".join(e["content"] for e in events if e["type"] == "delta") == events[-1]["draft"]["text"]
    bad = api.post("/v1/write", json={"title": "x", "format": "poem"})
    assert bad.status_code == 400 and "poem" in bad.json()["error"]["message"]
    chat = server.openai().chat.completions.create(model="writer", messages=[{"role": "user", "content": "Hello"}])
    assert chat.choices[0].message.content.startswith("# Hello")
