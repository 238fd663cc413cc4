"""A purchase by clicking, in headless Chromium (Debian's /usr/bin/chromium, driven by
Selenium through /usr/bin/chromedriver): the chat simulator page, the order Flow form, the
emulated Stripe Checkout page, and the confirmation back in the chat. Saves a screenshot
of each step under tests/artifacts/."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.wait import WebDriverWait

from tests.support.sandbox_client import Sandbox

pytestmark = pytest.mark.live  # every test here talks to the running bot

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"  # `make pytest` installs both when missing
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
WAIT_SECONDS = 30
T = TypeVar("T")


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    options = Options()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--window-size=1280,900",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    yield driver
    driver.quit()


def find(driver: WebDriver, css: str) -> WebElement:
    """The first visible, clickable element matching `css`, once there is one. Only for
    elements outside the chat, which the page never redraws."""
    found: WebElement = WebDriverWait(driver, WAIT_SECONDS).until(
        ec.element_to_be_clickable((By.CSS_SELECTOR, css))
    )
    return found


def settled(driver: WebDriver, read: Callable[[WebDriver], T]) -> T:
    """`read(driver)` once it succeeds. The page redraws the whole chat whenever a message
    arrives or a status tick changes, so an element found in it can go stale between
    finding it and using it: each try finds it afresh."""
    wait = WebDriverWait(
        driver,
        WAIT_SECONDS,
        ignored_exceptions=[StaleElementReferenceException, NoSuchElementException],
    )
    return wait.until(read)


def act(driver: WebDriver, by: str, locator: str, action: Callable[[WebElement], None]) -> None:
    """Runs `action` on the element at `locator` once it is shown, found afresh for each try
    (a stale element raises before the click or the typing happens)."""

    def done(page: WebDriver) -> bool:
        element = page.find_element(by, locator)
        if not (element.is_displayed() and element.is_enabled()):
            return False
        action(element)
        return True

    settled(driver, done)


def click(driver: WebDriver, by: str, locator: str) -> None:
    act(driver, by, locator, WebElement.click)


def bubble_xpath(text: str) -> str:
    return f"//div[contains(@class, 'bubble') and contains(., {text!r})]"


def bubble_with(driver: WebDriver, text: str) -> str:
    """The text of the newest chat bubble containing `text`, once it is shown."""

    def newest(page: WebDriver) -> str | bool:
        bubbles = page.find_elements(By.XPATH, bubble_xpath(text))
        return bool(bubbles) and bubbles[-1].text

    return str(settled(driver, newest))


def snap(driver: WebDriver, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    assert driver.save_screenshot(str(path))
    return path


def test_a_purchase_by_clicking(browser: WebDriver, live_sandbox: Sandbox) -> None:
    browser.get(live_sandbox.page + "/")
    assert "SANDBOX" in find(browser, "#banner").text
    find(browser, "#customer-name").send_keys("Browser customer")
    find(browser, "#add").click()
    find(browser, "#text").send_keys("hello")
    find(browser, "#send").click()
    greeting = bubble_xpath("Welcome to Bean & Leaf")
    click(browser, By.XPATH, f"({greeting})[last()]//button[.='Place an order']")
    click(
        browser,
        By.XPATH,
        f"({bubble_xpath('Tap below to choose')})[last()]//button[contains(@class, 'flow-cta')]",
    )

    # The cart: three products, each added on the cart screen, the last one checked out.
    cart = [
        ("espresso-beans", "2", "add", "2 × Espresso Beans — €25.80"),
        ("filter-coffee", "1", "add", "1 × Filter Coffee — €11.50"),
        ("green-tea", "1", "checkout", ""),
    ]
    for product, quantity, then, added in cart:
        Select(find(browser, "#f-product")).select_by_value(product)
        Select(find(browser, "#f-quantity")).select_by_value(quantity)
        find(browser, f"input[name='then'][value='{then}']").click()
        if product == "green-tea":
            snap(browser, "1-flow-cart")
        find(browser, "#flow-submit").click()
        if added:  # the cart screen comes back with the line and the running total
            WebDriverWait(browser, WAIT_SECONDS).until(
                ec.text_to_be_present_in_element((By.ID, "flow-form"), added)
            )
    WebDriverWait(browser, WAIT_SECONDS).until(ec.presence_of_element_located((By.ID, "f-street")))
    for field, value in {
        "name": "Ann Example",
        "street": "Main St 1",
        "postal_code": "1000",
        "city": "Town",
    }.items():
        find(browser, f"#f-{field}").send_keys(value)
    Select(find(browser, "#f-country")).select_by_value("DE")
    find(browser, "#flow-submit").click()
    for line in (
        "2 × Espresso Beans — €25.80",
        "1 × Filter Coffee — €11.50",
        "1 × Sencha Green Tea — €8.90",
        "Total: €46.20",
    ):
        WebDriverWait(browser, WAIT_SECONDS).until(
            ec.text_to_be_present_in_element((By.ID, "flow-form"), line)
        )
    snap(browser, "2-flow-summary")
    find(browser, "#flow-submit").click()
    WebDriverWait(browser, WAIT_SECONDS).until(ec.invisibility_of_element_located((By.ID, "flow")))

    pay_link = f"({bubble_xpath('Total: €46.20')})[last()]//a[contains(@class, 'cta')]"
    label, href = settled(
        browser,
        lambda page: (
            page.find_element(By.XPATH, pay_link).text,
            page.find_element(By.XPATH, pay_link).get_attribute("href"),
        ),
    )
    assert label == "↗ Pay now"
    browser.get(str(href))  # the link's page, in this tab
    assert find(browser, "#amount").text == "€46.20"
    snap(browser, "3-checkout")
    find(browser, "#pay").click()
    WebDriverWait(browser, WAIT_SECONDS).until(
        ec.text_to_be_present_in_element((By.ID, "status"), "complete")
    )
    find(browser, "#back").click()  # CHECKOUT_SUCCESS_URL: back to the chat

    confirmation = bubble_with(browser, "Payment received, thank you!")
    assert "is confirmed" in confirmation and "€25.80" in confirmation
    live_sandbox.idle()  # a duplicate confirmation would have arrived by now
    confirmations = browser.find_elements(By.XPATH, bubble_xpath("is confirmed"))
    assert len(confirmations) == 1
    assert snap(browser, "4-confirmation").stat().st_size > 10_000


def test_a_hand_over_answered_from_the_staff_panel(
    browser: WebDriver, live_sandbox: Sandbox
) -> None:
    browser.get(live_sandbox.page + "/")
    find(browser, "#customer-name").send_keys("Panel customer")
    find(browser, "#add").click()
    find(browser, "#text").send_keys("I want to talk to a person")
    find(browser, "#send").click()
    bubble_with(browser, "a person will answer you here")
    box = "//div[contains(@class, 'handover') and contains(., 'I want to talk to a person')]"
    WebDriverWait(browser, WAIT_SECONDS).until(ec.visibility_of_element_located((By.XPATH, box)))
    reply = "Hello, this is the shop."
    act(browser, By.XPATH, f"{box}//input", lambda field: field.send_keys(reply))
    click(browser, By.XPATH, f"{box}//button[contains(@class, 'reply')]")
    bubble_with(browser, "Hello, this is the shop.")
    snap(browser, "5-staff-reply")
    click(browser, By.XPATH, f"{box}//button[contains(@class, 'resume')]")
    bubble_with(browser, "handed you back to me")
    WebDriverWait(browser, WAIT_SECONDS).until(
        ec.text_to_be_present_in_element((By.XPATH, box), "back with the bot")
    )


def test_a_cart_from_the_catalog_by_clicking(browser: WebDriver, live_sandbox: Sandbox) -> None:
    browser.get(live_sandbox.page + "/")
    find(browser, "#customer-name").send_keys("Cart customer")
    find(browser, "#add").click()
    find(browser, "#text").send_keys("what do you sell")
    find(browser, "#send").click()
    bubble_with(browser, "BL-ESP-250")
    click(browser, By.XPATH, "//button[.='＋ BL-ESP-250']")
    click(browser, By.XPATH, "//button[.='＋ BL-ESP-250']")
    click(browser, By.XPATH, "//button[.='＋ BL-SEN-100']")
    WebDriverWait(browser, WAIT_SECONDS).until(
        ec.text_to_be_present_in_element((By.ID, "cart-items"), "2 × BL-ESP-250, 1 × BL-SEN-100")
    )
    snap(browser, "6-cart")
    find(browser, "#send-cart").click()
    bubble_with(browser, "Cart sent: 3 item(s)")
    summary = bubble_with(browser, "Sencha")
    assert "2 × Espresso Beans" in summary and "1 × Sencha Green Tea" in summary
    assert not browser.find_element(By.ID, "cart").is_displayed()  # sent, so emptied
