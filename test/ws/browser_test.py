#!/usr/bin/python3
"""The web app in a real headless Chromium (Debian's chromium + chromedriver, driven by
python3-selenium) against the whole stack on loopback and a real MariaDB.

Broker, one actor with every service, edge A (plain port + WebSocket port serving
web/) and edge B (plain port, for the `imbus` CLI). Two browser users, alice and bob,
register in the app, befriend, chat 1:1 both ways, unread counts show, a read receipt,
"typing", a recall; carol, on the
CLI, joins their group and all three talk there live. Bob's page is reloaded (the
session is kept: RESUME), then his browser is closed while messages come in and
reopened with the same profile (SYNC shows them, with unread counts); history scrolls
back. Edge A is killed with SIGKILL and restarted on the same ports: both apps
reconnect by themselves and carry on, and no message of the outage is lost (one sent
by carol through edge B, one typed by alice while offline, resent after the
reconnect). Last, dave opens the app over https:// on edge A's --wss-listen port (a
throwaway certificate) and writes to alice over wss://. A screenshot of each browser
is saved as an artifact.

Usage: browser_test.py --bin BUILD/bin --web SRC/web --artifacts DIR
Needs IMBUS_TEST_DB_SOCKET (scripts/test sets it); exits 77 (skipped) without it.
"""
import argparse
import os
import random
import shutil
import signal
import socket
import string
import subprocess
import sys
import tempfile
import time

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

PASSWORD = "password1"
WAIT_S = 20


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def log(*args):
    print("[browser_test]", *args, flush=True)


class Stack:
    def __init__(self, bindir, web, work):
        self.bin = bindir
        self.web = web
        self.work = work
        self.procs = {}
        self.bus = f"tcp://127.0.0.1:{free_port()}"
        self.db = "imbus_browser_" + "".join(random.choices(string.ascii_lowercase, k=8))
        self.edge_a = {"plain": free_port(), "ws": free_port(), "wss": free_port()}
        self.cert = os.path.join(work, "cert.pem")
        self.key = os.path.join(work, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj", "/CN=localhost",
                        "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                        "-keyout", self.key, "-out", self.cert], check=True, capture_output=True)
        self.edge_b = {"plain": free_port()}

    def start(self, name, args):
        logf = open(os.path.join(self.work, name + ".log"), "ab")
        self.procs[name] = subprocess.Popen([os.path.join(self.bin, args[0])] + args[1:],
                                            stdout=logf, stderr=subprocess.STDOUT)

    def start_edge_a(self):
        self.start("edge-a", ["imbus-edge", "--listen", f"127.0.0.1:{self.edge_a['plain']}",
                              "--ws-listen", f"127.0.0.1:{self.edge_a['ws']}", "--web-root", self.web,
                              "--wss-listen", f"127.0.0.1:{self.edge_a['wss']}",
                              "--tls-cert", self.cert, "--tls-key", self.key,
                              "--broker", self.bus, "--name", "edge-a", "--heartbeat-ms", "200"])
        self.wait_edge(self.edge_a["plain"])

    def up(self):
        services = subprocess.check_output([os.path.join(self.bin, "imbus-actor"),
                                            "--list-services"], text=True).split()
        self.start("broker", ["imbus-broker", "--bind", self.bus, "--heartbeat-ms", "200"])
        self.start("actor", ["imbus-actor", "--services", ",".join(services), "--broker", self.bus,
                             "--db-socket", os.environ["IMBUS_TEST_DB_SOCKET"], "--db-name", self.db,
                             "--pwhash-ops", "1", "--pwhash-mem", "8192", "--heartbeat-ms", "200",
                             "--file-dir", os.path.join(self.work, "files"),
                             # The web app's "add friend" befriends at once: the
                             # legacy mode (friend requests are not in the app yet).
                             "--immediate-friends"])
        self.start_edge_a()
        self.start("edge-b", ["imbus-edge", "--listen", f"127.0.0.1:{self.edge_b['plain']}",
                              "--broker", self.bus, "--name", "edge-b", "--heartbeat-ms", "200"])
        self.wait_edge(self.edge_b["plain"])

    def wait_edge(self, port):
        deadline = time.time() + 30
        while time.time() < deadline:
            r = subprocess.run([os.path.join(self.bin, "imbus"), "--server", f"127.0.0.1:{port}",
                                "--timeout-ms", "1000", "route"], capture_output=True)
            if r.returncode == 0:
                return
            time.sleep(0.2)
        raise RuntimeError(f"edge on {port} did not answer\n{self.logs()}")

    def kill(self, name):
        p = self.procs.pop(name)
        p.send_signal(signal.SIGKILL)
        p.wait()

    def down(self):
        """Stops everything; returns the edges that did not exit cleanly (under ASan a
        leak or an error makes the exit code non-zero)."""
        for p in self.procs.values():
            p.send_signal(signal.SIGTERM)
        unclean = []
        for name, p in self.procs.items():
            try:
                rc = p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                rc = "timeout"
            if name.startswith("edge") and rc != 0:
                unclean.append(f"{name}: exit {rc}")
        self.procs.clear()
        return unclean

    def logs(self):
        out = []
        for f in sorted(os.listdir(self.work)):
            if f.endswith(".log"):
                with open(os.path.join(self.work, f), errors="replace") as fh:
                    out.append(f"--- {f}\n" + "".join(fh.readlines()[-40:]))
        return "\n".join(out)

    def cli(self, user, *args):
        env = dict(os.environ, IMBUS_USER=user, IMBUS_PASSWORD=PASSWORD)
        r = subprocess.run([os.path.join(self.bin, "imbus"), "--server",
                            f"127.0.0.1:{self.edge_b['plain']}", *args],
                           capture_output=True, text=True, env=env, timeout=30)
        if r.returncode != 0:
            raise RuntimeError(f"imbus {' '.join(args)}: exit {r.returncode}: {r.stderr}{r.stdout}")
        return r.stdout


class Browser:
    """One Chromium with its own profile directory (kept across a close and reopen)."""

    def __init__(self, name, url, profile, insecure=False):
        self.insecure = insecure  # accept the throwaway certificate of https://
        self.name = name
        self.url = url
        self.profile = profile
        self.d = None

    def open(self):
        o = Options()
        for a in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                  "--window-size=1280,800", f"--user-data-dir={self.profile}"]:
            o.add_argument(a)
        if self.insecure:
            o.add_argument("--ignore-certificate-errors")
        # Downloads (the file links of the app) stay inside the throwaway profile.
        o.add_experimental_option("prefs", {"download.default_directory":
                                            os.path.join(self.profile, "downloads")})
        o.binary_location = "/usr/bin/chromium"
        o.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.d = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=o)
        self.d.get(self.url)

    def close(self):
        if self.d:
            self.d.quit()
            self.d = None

    def el(self, id_):
        return self.d.find_element(By.ID, id_)

    def wait(self, what, cond, timeout=WAIT_S):
        def safe(_):
            try:
                return cond()
            except (StaleElementReferenceException, WebDriverException):
                return False
        try:
            return WebDriverWait(self.d, timeout, poll_frequency=0.1).until(safe)
        except Exception:
            self.screenshot(f"failed-{self.name}")
            raise AssertionError(f"{self.name}: timed out waiting for {what}; notice: "
                                 f"{self.text('notice')!r}; state: {self.text('conn-state')!r}; "
                                 f"console: {self.console()}")

    def text(self, id_):
        try:
            return self.el(id_).text
        except WebDriverException:
            return ""

    def console(self):
        try:
            return [e["message"] for e in self.d.get_log("browser")][-10:]
        except WebDriverException:
            return []

    def screenshot(self, name):
        path = os.path.join(ARTIFACTS, name + ".png")
        try:
            self.d.save_screenshot(path)
            log("screenshot", path)
        except WebDriverException:
            pass

    def js(self, script, *args):
        return self.d.execute_script(script, *args)

    def register(self, user):
        self.wait("the login form", lambda: self.el("login-view").is_displayed()
                  and "online" == self.text("conn-state"))
        self.el("name").send_keys(user)
        self.el("password").send_keys(PASSWORD)
        self.el("register-btn").click()
        self.wait("logged in", lambda: self.el("main-view").is_displayed()
                  and self.text("me").startswith(user + " "))

    def tab(self, name):
        self.el("tab-" + name).click()

    def row(self, list_id, attr, value):
        return self.d.find_element(By.CSS_SELECTOR, f"#{list_id} li[data-{attr}='{value}']")

    def click_in_row(self, list_id, attr, value, css):
        """Clicks `css` in the row, finding it again if the app re-rendered the list
        in between (presence and unread updates redraw whole lists)."""
        def click():
            self.row(list_id, attr, value).find_element(By.CSS_SELECTOR, css).click()
            return True
        self.wait(f"{css} in {list_id} row {value} clicked", click)

    def messages(self):
        return [e.text for e in self.d.find_elements(By.CSS_SELECTOR, "#message-list .msg .text")]

    def unread(self, conv):
        try:
            return int(self.row("conv-list", "conv", conv)
                       .find_element(By.CSS_SELECTOR, ".unread").get_attribute("data-n"))
        except WebDriverException:
            return -1

    def open_conv(self, conv):
        self.tab("chats")
        self.wait(f"{conv} in the list", lambda: self.row("conv-list", "conv", conv))
        self.wait(f"{conv} clicked", lambda: self.row("conv-list", "conv", conv).click() or True)
        self.wait(f"{conv} open", lambda: "open" in self.row("conv-list", "conv", conv)
                  .get_attribute("class"))

    def send(self, text):
        box = self.el("composer-text")
        box.send_keys(text)
        self.el("send-btn").click()

    def wait_message(self, text, timeout=WAIT_S):
        self.wait(f"message {text!r}", lambda: text in self.messages(), timeout)

    def uid(self):
        return int(self.text("me").split("uid ")[1].rstrip(")"))


def conv_d(a, b):
    lo, hi = sorted((a, b))
    return f"d:{lo}:{hi}"


def run(stack):
    url = f"http://127.0.0.1:{stack.edge_a['ws']}/"
    suffix = "".join(random.choices(string.ascii_lowercase, k=5))
    alice_name, bob_name, carol_name = f"alice_{suffix}", f"bob_{suffix}", f"carol_{suffix}"
    profiles = tempfile.mkdtemp(prefix="imbus-browser-")
    alice = Browser("alice", url, os.path.join(profiles, "alice"))
    bob = Browser("bob", url, os.path.join(profiles, "bob"))
    try:
        alice.open()
        bob.open()
        log("register in the app")
        alice.register(alice_name)
        bob.register(bob_name)
        a_uid, b_uid = alice.uid(), bob.uid()
        dconv = conv_d(a_uid, b_uid)

        log("befriend: alice adds bob from the Users tab")
        alice.tab("users")
        alice.wait("bob in the user list", lambda: alice.row("user-list", "uid", b_uid))
        alice.click_in_row("user-list", "uid", b_uid, ".add-friend")
        alice.tab("friends")
        alice.wait("bob a friend, online", lambda: "on" in alice.row("friend-list", "uid", b_uid)
                   .find_element(By.CSS_SELECTOR, ".dot").get_attribute("class"))
        bob.js("location.reload()")
        bob.wait("logged in again after reload", lambda: bob.text("me").startswith(bob_name))
        bob.tab("friends")
        bob.wait("alice a friend", lambda: bob.row("friend-list", "uid", a_uid))

        log("1:1 chat both ways, live, with unread counts")
        alice.click_in_row("friend-list", "uid", b_uid, ".chat")
        alice.send("hello bob")
        bob.tab("chats")
        bob.wait("unread 1 from alice", lambda: bob.unread(dconv) == 1)
        bob.open_conv(dconv)
        bob.wait_message("hello bob")
        bob.wait("unread cleared", lambda: bob.unread(dconv) == 0)
        bob.send("hi alice")
        alice.wait_message("hi alice")
        alice.wait_message("hello bob")

        log("read receipt, typing, recall (issue 18)")
        read_mark = ("return [...document.querySelectorAll('#message-list li.mine')].some(li =>"
                     " li.textContent.includes(arguments[0]) &&"
                     " li.querySelector('.from').textContent.includes('read'))")
        alice.wait("bob has read 'hello bob'", lambda: alice.js(read_mark, "hello bob"))
        time.sleep(1.6)  # the server passes one TYPING per 1.5 s (sending "hello bob" typed too)
        alice.el("composer-text").send_keys("typ")
        bob.wait("alice is typing", lambda: "is typing" in bob.text("chat-title"))
        alice.el("composer-text").clear()
        alice.send("take this back")
        bob.wait_message("take this back")
        recall = ("for (const li of document.querySelectorAll('#message-list li.mine'))"
                  " if (li.textContent.includes(arguments[0])) { li.querySelector('.recall').click();"
                  " return true; } return false;")
        assert alice.js(recall, "take this back")
        bob.wait_message("(message recalled)")
        assert "take this back" not in bob.messages(), bob.messages()

        log("group: alice creates, bob joins in the app, carol joins on the CLI")
        alice.tab("groups")
        alice.el("group-name").send_keys("room")
        alice.el("create-group-btn").click()
        alice.wait("the group listed", lambda: alice.d.find_elements(By.CSS_SELECTOR,
                                                                     "#group-list li[data-gid]"))
        gid = int(alice.d.find_element(By.CSS_SELECTOR, "#group-list li[data-gid]")
                  .get_attribute("data-gid"))
        gconv = f"g:{gid}"
        bob.tab("groups")
        bob.el("join-gid").send_keys(str(gid))
        bob.el("join-group-btn").click()
        bob.wait("the group listed", lambda: bob.row("group-list", "gid", gid))
        stack.cli(carol_name, "register", carol_name)
        stack.cli(carol_name, "groups", "join", str(gid))
        alice.click_in_row("group-list", "gid", gid, ".members")
        alice.wait("three members", lambda: len(alice.d.find_elements(
            By.CSS_SELECTOR, "#members-list li")) == 3)
        alice.click_in_row("group-list", "gid", gid, ".open")
        stack.cli(carol_name, "send", "--group", str(gid), "carol says hi")
        alice.wait_message("carol says hi")
        alice.send("alice to the room")
        bob.tab("chats")
        bob.wait("the room in bob's chats", lambda: bob.unread(gconv) >= 0)
        bob.open_conv(gconv)
        bob.wait_message("carol says hi")
        bob.wait_message("alice to the room")
        bob.send("bob to the room")
        alice.wait_message("bob to the room")
        hist = stack.cli(carol_name, "history", gconv)
        assert "bob to the room" in hist and "alice to the room" in hist, hist

        log("reload keeps the session (RESUME)")
        bob.d.refresh()
        bob.wait("resumed", lambda: bob.text("me").startswith(bob_name)
                 and bob.el("main-view").is_displayed())
        assert not bob.el("login-view").is_displayed()

        log("bob's browser closed; messages come in; reopened: SYNC shows them")
        bob.close()
        alice.tab("friends")
        alice.click_in_row("friend-list", "uid", b_uid, ".chat")
        for i in range(3):
            alice.send(f"while you were away {i}")
        alice.wait("sent", lambda: not alice.d.find_elements(By.CSS_SELECTOR, ".msg.pending"))
        stack.cli(carol_name, "send", str(b_uid), "carol direct while away")
        # 35 more, so that the conversation's history is more than one page.
        alice.js("""
          const box = document.getElementById('composer-text');
          const form = document.getElementById('composer');
          for (let i = 0; i < 35; ++i) { box.value = 'bulk ' + i; form.requestSubmit(); }""")
        alice.wait("bulk sent", lambda: "bulk 34" in alice.messages()
                   and not alice.d.find_elements(By.CSS_SELECTOR, ".msg.pending"), 60)
        bob.open()
        bob.wait("resumed after reopening", lambda: bob.text("me").startswith(bob_name)
                 and bob.el("main-view").is_displayed())
        bob.wait("38 unread from alice", lambda: bob.unread(dconv) == 38)
        bob.open_conv(dconv)
        bob.wait_message("bulk 34")
        bob.wait_message("while you were away 0")
        assert "hello bob" not in bob.messages(), "only what SYNC brought so far"
        log("history scrolls back")
        for _ in range(3):
            bob.js("document.getElementById('messages').scrollTop = 0")
            time.sleep(0.3)
        bob.wait("the first message", lambda: "hello bob" in bob.messages())
        bob.wait("unread cleared", lambda: bob.unread(dconv) == 0)
        bob.tab("chats")
        carol_convs = [c for c in bob.js(
            "return [...document.querySelectorAll('#conv-list li')].map(l => l.dataset.conv)")
            if c.startswith("d:") and c != dconv]
        assert len(carol_convs) == 1, carol_convs
        assert bob.unread(carol_convs[0]) == 1
        bob.open_conv(carol_convs[0])
        bob.wait_message("carol direct while away")

        log("kill -9 of edge A: the apps reconnect and nothing is lost")
        bob.open_conv(gconv)
        alice.tab("chats")
        alice.open_conv(gconv)
        stack.kill("edge-a")
        alice.wait("offline", lambda: alice.text("conn-state").startswith("offline"))
        bob.wait("offline", lambda: bob.text("conn-state").startswith("offline"))
        stack.cli(carol_name, "send", "--group", str(gid), "during the outage")
        alice.send("typed while offline")
        alice.wait("kept to resend", lambda: alice.d.find_elements(By.CSS_SELECTOR, ".msg.pending"))
        stack.start_edge_a()
        for b in (alice, bob):
            b.wait("online again", lambda b=b: b.text("conn-state") == "online", 30)
            b.wait_message("during the outage")
            b.wait_message("typed while offline")
        hist = stack.cli(carol_name, "history", gconv)
        assert hist.count("typed while offline") == 1, hist
        bob.send("after the outage")
        alice.wait_message("after the outage")

        log("the app over https:// and wss:// (--wss-listen)")
        dave_name = f"dave_{suffix}"
        dave = Browser("dave", f"https://127.0.0.1:{stack.edge_a['wss']}/",
                       os.path.join(profiles, "dave"), insecure=True)
        try:
            dave.open()
            dave.register(dave_name)
            d_uid = dave.uid()
            dave.tab("users")
            dave.wait("alice in the user list", lambda: dave.row("user-list", "uid", a_uid))
            dave.click_in_row("user-list", "uid", a_uid, ".chat")
            dave.send("over wss")
            alice.tab("chats")
            alice.wait("dave's message counted unread", lambda: alice.unread(conv_d(a_uid, d_uid)) == 1)
            assert "over wss" in stack.cli(alice_name, "history", conv_d(a_uid, d_uid))
        finally:
            dave.close()

        alice.tab("friends")
        alice.screenshot("web-app-alice")
        bob.tab("chats")
        bob.screenshot("web-app-bob")
        for b in (alice, bob):
            severe = [m for m in b.console() if "SEVERE" in m and "WebSocket" not in m
                      and "ERR_CONNECTION_REFUSED" not in m]
            assert not severe, severe
    finally:
        alice.close()
        bob.close()
        shutil.rmtree(profiles, ignore_errors=True)


def parse_args():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--web", required=True)
    ap.add_argument("--artifacts", required=True)
    return ap.parse_args()


def main():
    args = parse_args()
    if not os.environ.get("IMBUS_TEST_DB_SOCKET"):
        print("skipped: IMBUS_TEST_DB_SOCKET is not set (scripts/test sets it)")
        return 77
    return with_stack(args, run)


def with_stack(args, scenario):
    """Checks the tools, brings the stack up, runs scenario(stack), brings it down;
    -> the exit code. Also used by browser_file_test.py."""
    global ARTIFACTS
    for tool in ("/usr/bin/chromium", "/usr/bin/chromedriver"):
        if not os.path.exists(tool):
            print(f"{tool} missing: install chromium and chromium-driver (scripts/test does)")
            return 1
    if not os.path.exists(os.path.join(args.web, "node_modules/@msgpack/msgpack")):
        print(f"{args.web}/node_modules missing: run npm ci in {args.web} (scripts/test does)")
        return 1
    ARTIFACTS = args.artifacts
    os.makedirs(ARTIFACTS, exist_ok=True)
    work = tempfile.mkdtemp(prefix="imbus-browser-stack-")
    stack = Stack(args.bin, args.web, work)
    ok = False
    unclean = []
    try:
        stack.up()
        scenario(stack)
        ok = True
    finally:
        unclean = stack.down()
        if not ok or unclean:
            print(stack.logs())
        shutil.rmtree(work, ignore_errors=True)
    if unclean:
        log("edges did not stop cleanly:", "; ".join(unclean))
        return 1
    log("passed")
    return 0


ARTIFACTS = "."
if __name__ == "__main__":
    sys.exit(main())
