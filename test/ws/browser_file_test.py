#!/usr/bin/python3
"""Files and images in the web app (issue 19), in a real headless Chromium against the
whole stack on loopback and a real MariaDB (the Stack and Browser of browser_test.py).

Alice attaches a PNG (made here) through the composer's file input: it is uploaded
(FILE/UPLOAD_*) and sent to bob (MSG/SEND `file`); bob's page shows it inline as an
<img> whose natural size is the PNG's, in the space its width/height reserved.
A 100,000-byte file that is no image (several chunks, so its download is pipelined)
shows as a link with its name and size; the bytes behind the link bob clicked have the
file's SHA-256. The CLI sees the file message in the history. A file dropped on the
chat is sent like an attached one. An 8 MiB upload whose
WebSocket is closed a quarter of the way resumes after the reconnect from where the
server's bytes end, and bob's download of it has the right SHA-256. A file over the web app's
64 MiB cap is refused in the page with a clear notice and nothing is sent. The page's
own SHA-256 (for http:// pages that are not a secure context) agrees with WebCrypto.
A screenshot of bob's page is saved as an artifact (docs/img/web-app.png).

Usage: browser_file_test.py --bin BUILD/bin --web SRC/web --artifacts DIR
Needs IMBUS_TEST_DB_SOCKET (scripts/test sets it); exits 77 (skipped) without it.
"""
import hashlib
import os
import random
import shutil
import string
import struct
import subprocess
import sys
import tempfile
import zlib

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import browser_test  # noqa: E402  (the stack and browser helpers)
from browser_test import Browser, conv_d, log  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402

PNG_W, PNG_H = 160, 96


def make_png(w, h):
    """An RGB PNG with a colour gradient and a disc, as bytes."""
    rows = bytearray()
    for y in range(h):
        rows.append(0)  # filter: none
        for x in range(w):
            inside = (x - w * 0.65) ** 2 + (y - h * 0.5) ** 2 < (h * 0.3) ** 2
            rows += bytes((250, 200, 40) if inside else (40 + x * 150 // w, 90 + y * 120 // h, 200))

    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(bytes(rows), 9)) + chunk(b"IEND", b""))


def file_boxes(b):
    """[{file, img, naturalWidth, naturalHeight, width, height, link, meta}] of the open
    conversation's delivered (not pending) messages."""
    return b.js("""
      return [...document.querySelectorAll('#message-list .msg:not(.pending) .file')].map(f => {
        const img = f.querySelector('img');
        return {file: f.dataset.file, img: !!img,
                naturalWidth: img ? img.naturalWidth : 0, naturalHeight: img ? img.naturalHeight : 0,
                width: img ? img.getAttribute('width') : null,
                height: img ? img.getAttribute('height') : null,
                complete: img ? img.complete : false,
                link: f.querySelector('a.file-link').textContent,
                href: f.querySelector('a.file-link').getAttribute('href'),
                meta: f.querySelector('.meta').textContent};
      });""")


def page_sha256(b, href):
    """The hex SHA-256 of what the page gets from href (a blob: URL), and its length."""
    return b.d.execute_async_script("""
      const done = arguments[arguments.length - 1];
      fetch(arguments[0]).then(r => r.arrayBuffer()).then(async buf => {
        const d = new Uint8Array(await crypto.subtle.digest('SHA-256', buf));
        done([[...d].map(x => x.toString(16).padStart(2, '0')).join(''), buf.byteLength]);
      }).catch(e => done(['error ' + e, 0]));""", href)


def run(stack):
    work = stack.work
    url = f"http://127.0.0.1:{stack.edge_a['ws']}/"
    suffix = "".join(random.choices(string.ascii_lowercase, k=5))
    alice_name, bob_name = f"alice_{suffix}", f"bob_{suffix}"
    profiles = tempfile.mkdtemp(prefix="imbus-browser-file-")
    alice = Browser("alice", url, os.path.join(profiles, "alice"))
    bob = Browser("bob", url, os.path.join(profiles, "bob"))
    png = make_png(PNG_W, PNG_H)
    png_path = os.path.join(work, "sunset.png")
    with open(png_path, "wb") as f:
        f.write(png)
    blob = random.randbytes(100_000)
    blob_path = os.path.join(work, "measurements.bin")
    with open(blob_path, "wb") as f:
        f.write(blob)
    huge_path = os.path.join(work, "huge.bin")
    with open(huge_path, "wb") as f:
        f.truncate(65 * 1024 * 1024)  # sparse: over the web app's 64 MiB cap
    try:
        alice.open()
        bob.open()
        alice.register(alice_name)
        bob.register(bob_name)
        a_uid, b_uid = alice.uid(), bob.uid()
        dconv = conv_d(a_uid, b_uid)

        log("the page's own SHA-256 matches WebCrypto")
        same = alice.d.execute_async_script("""
          const done = arguments[arguments.length - 1];
          import('/js/sha256.mjs').then(async m => {
            for (const n of [0, 3, 55, 56, 64, 100, 70000]) {
              const b = new Uint8Array(n).map((_, i) => (i * 31 + 7) & 255);
              const web = m.hex(new Uint8Array(await crypto.subtle.digest('SHA-256', b)));
              const own = m.hex(new m.Sha256().update(b.subarray(0, 10)).update(b.subarray(10)).digest());
              if (web !== own) return done(`n=${n}: ${web} != ${own}`);
            }
            done('same');
          }).catch(e => done('error ' + e));""")
        assert same == "same", same

        log("alice attaches a PNG for bob")
        alice.tab("users")
        alice.wait("bob in the user list", lambda: alice.row("user-list", "uid", b_uid))
        alice.click_in_row("user-list", "uid", b_uid, ".chat")
        alice.wait("the attach input enabled", lambda: alice.el("file-input").is_enabled())
        alice.el("file-input").send_keys(png_path)
        alice.wait("the image sent", lambda: any(f["img"] and f["complete"] and f["naturalWidth"] == PNG_W
                                                 for f in file_boxes(alice)))
        alice.send("a photo for you")

        log("bob sees it inline")
        bob.open_conv(dconv)
        bob.wait_message("a photo for you")
        bob.wait("the image loaded", lambda: any(f["img"] and f["complete"] and f["naturalWidth"] > 0
                                                 for f in file_boxes(bob)))
        [img] = [f for f in file_boxes(bob) if f["img"]]
        assert (img["naturalWidth"], img["naturalHeight"]) == (PNG_W, PNG_H), img
        # The server read the PNG's size: the space was reserved at that size.
        assert (img["width"], img["height"]) == (str(PNG_W), str(PNG_H)), img
        assert img["link"] == "sunset.png" and f"{len(png) / 1024:.1f} KiB" in img["meta"], img
        assert img["href"].startswith("blob:"), img
        assert page_sha256(bob, img["href"]) == [hashlib.sha256(png).hexdigest(), len(png)]

        log("a file that is no image: a link; its download has the right bytes")
        alice.el("file-input").send_keys(blob_path)
        bob.wait("the file link", lambda: any(f["link"] == "measurements.bin" for f in file_boxes(bob)))
        [box] = [f for f in file_boxes(bob) if f["link"] == "measurements.bin"]
        assert not box["img"] and "97.7 KiB" in box["meta"], box
        assert box["href"] == "#", "not downloaded before it is clicked"
        bob.d.find_element(By.CSS_SELECTOR, f".file[data-file='{box['file']}'] a.file-link").click()
        bob.wait("downloaded", lambda: [f for f in file_boxes(bob) if f["file"] == box["file"]][0]
                 ["href"].startswith("blob:"))
        href = [f for f in file_boxes(bob) if f["file"] == box["file"]][0]["href"]
        assert page_sha256(bob, href) == [hashlib.sha256(blob).hexdigest(), len(blob)]
        hist = stack.cli(bob_name, "history", dconv)
        assert "[file] sunset.png" in hist and "[file] measurements.bin" in hist, hist

        log("a file dropped on the chat is sent too")
        alice.js("""
          const dt = new DataTransfer();
          dt.items.add(new File(['dropped on the chat'], 'notes.txt', {type: 'text/plain'}));
          document.getElementById('messages').dispatchEvent(
            new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true}));""")
        bob.wait("the dropped file", lambda: any(f["link"] == "notes.txt" for f in file_boxes(bob)))

        log("an upload cut by a dropped connection resumes where it stopped")
        big = random.randbytes(8 * 1024 * 1024)
        big_path = os.path.join(work, "recording.bin")
        with open(big_path, "wb") as f:
            f.write(big)
        # In the page: close the WebSocket once a quarter is sent, and note the
        # "resumed at" the pending message shows after the reconnect.
        alice.js("""
          window.cut = null; window.resumed = '';
          const t = setInterval(() => {
            const bar = document.querySelector('#message-list .msg.pending progress');
            if (bar && bar.value > 0.25) { clearInterval(t); window.cut = bar.value; imbusClient.ws.close(); }
          }, 2);
          new MutationObserver(() => {
            const m = document.querySelector('#message-list .msg.pending .meta');
            if (m && m.textContent.includes('resumed at')) window.resumed = m.textContent;
          }).observe(document.getElementById('message-list'), {childList: true, subtree: true});""")
        alice.el("file-input").send_keys(big_path)
        bob.wait("the big file's link", lambda: any(f["link"] == "recording.bin" for f in file_boxes(bob)), 90)
        cut, resumed = alice.js("return [window.cut, window.resumed]")
        assert cut is not None and cut < 1, cut
        assert "resumed at" in resumed and "resumed at 0 B" not in resumed, resumed
        log(f"cut at {cut:.2f} of the upload; {resumed.strip()}")
        [box] = [f for f in file_boxes(bob) if f["link"] == "recording.bin"]
        bob.d.find_element(By.CSS_SELECTOR, f".file[data-file='{box['file']}'] a.file-link").click()
        bob.wait("downloaded", lambda: [f for f in file_boxes(bob) if f["file"] == box["file"]][0]
                 ["href"].startswith("blob:"), 90)
        href = [f for f in file_boxes(bob) if f["file"] == box["file"]][0]["href"]
        assert page_sha256(bob, href) == [hashlib.sha256(big).hexdigest(), len(big)]

        log("a file over the web app's cap: refused with a notice, nothing sent")
        alice.el("file-input").send_keys(huge_path)
        alice.wait("the notice", lambda: "huge.bin" in alice.text("notice")
                   and "TOO_LARGE" in alice.text("notice"))
        assert "64.0 MiB" in alice.text("notice"), alice.text("notice")
        alice.wait("nothing pending", lambda: not alice.d.find_elements(By.CSS_SELECTOR, ".msg.pending"))
        assert "huge.bin" not in stack.cli(bob_name, "history", dconv)

        bob.send("nice colours!")
        alice.wait_message("nice colours!")
        bob.wait("scrolled to the newest", lambda: bob.js(
            "const m = document.getElementById('messages'); m.scrollTop = m.scrollHeight; return true"))
        bob.screenshot("web-app-files")
        for b in (alice, bob):
            severe = [m for m in b.console() if "SEVERE" in m and "WebSocket" not in m]
            assert not severe, severe
    finally:
        alice.close()
        bob.close()
        shutil.rmtree(profiles, ignore_errors=True)


def main():
    args = browser_test.parse_args()
    if not os.environ.get("IMBUS_TEST_DB_SOCKET"):
        print("skipped: IMBUS_TEST_DB_SOCKET is not set (scripts/test sets it)")
        return 77
    services = subprocess.check_output([os.path.join(args.bin, "imbus-actor"), "--list-services"],
                                       text=True).split()
    if "file" not in services:
        print("skipped: this imbus-actor has no file service")
        return 77
    return browser_test.with_stack(args, run)


if __name__ == "__main__":
    sys.exit(main())
