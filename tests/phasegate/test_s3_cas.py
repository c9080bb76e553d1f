"""The local S3 honours conditional writes (phasegate/stack/s3rver_cas.js).

Tansu's s3 storage updates a partition's end offset by compare-and-swap; plain s3rver
ignores ``If-None-Match``/``If-Match``, which loses records on a broker restart and
between racing producers (test_durable_broker.py has those at the broker level).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
import urllib.error
import urllib.parse
import urllib.request

import pytest

from phasegate.stack import free_port
from phasegate.stack.s3 import CAS_SCRIPT, s3_process
from schemas.settings import Settings

pytestmark = [pytest.mark.timeout(180), pytest.mark.service]


def _need_node() -> str:
    node = shutil.which("node")
    if node is None or shutil.which("npm") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI needs Node.js and npm for the durable broker", pytrace=False)
        pytest.skip("no Node.js/npm: the durable broker's local S3 (s3rver) needs them")
    return node


STORED = '"0cc175b9c0f1b6a831c399e269772661"'
CASES = [  # (headers, stored etag or None, expected answer)
    ({}, None, None),
    ({}, STORED, None),
    ({"if-none-match": "*"}, None, None),
    ({"if-none-match": "*"}, STORED, [412, "PreconditionFailed"]),
    ({"if-none-match": STORED}, STORED, [412, "PreconditionFailed"]),
    ({"if-none-match": '"other"'}, STORED, None),
    ({"if-match": STORED}, STORED, None),
    ({"if-match": STORED.strip('"')}, STORED, None),  # unquoted
    ({"if-match": f'"x", W/{STORED}'}, STORED, None),  # a list, a weak tag
    ({"if-match": '"other"'}, STORED, [412, "PreconditionFailed"]),
    ({"if-match": "*"}, STORED, None),
    ({"if-match": STORED}, None, [404, "NoSuchKey"]),
    ({"if-match": "*"}, None, [404, "NoSuchKey"]),
]


def test_precondition_answers_as_s3_does():
    node = _need_node()
    program = (
        f"const {{ precondition }} = require({json.dumps(str(CAS_SCRIPT))});"
        f"const cases = {json.dumps([[h, e] for h, e, _ in CASES])};"
        "console.log(JSON.stringify(cases.map(([h, e]) => precondition(h, e))));"
    )
    out = subprocess.run([node, "-e", program], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == [want for _, _, want in CASES]


def test_reads_go_together_and_a_write_alone_in_arrival_order():
    node = _need_node()
    program = (
        f"const {{ guarded }} = require({json.dumps(str(CAS_SCRIPT))});"
        "const log = []; const sleep = ms => new Promise(r => setTimeout(r, ms));"
        "const op = (name, write, ms) => guarded('k', write, async () => {"
        "  log.push(name + '+'); await sleep(ms); log.push(name + '-'); });"
        "Promise.all([op('r1', false, 40), op('r2', false, 10), op('w1', true, 10),"
        "  op('r3', false, 10), op('w2', true, 10)])"
        "  .then(() => console.log(JSON.stringify(log)));"
    )
    out = subprocess.run([node, "-e", program], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == [
        *("r1+", "r2+", "r2-", "r1-"),  # two reads at once
        *("w1+", "w1-"),  # the write waits for both, and alone
        *("r3+", "r3-"),  # a read that came after the write waits for it
        *("w2+", "w2-"),
    ]


@pytest.fixture
def s3(tmp_path):
    _need_node()
    settings = Settings(s3_endpoint=f"http://127.0.0.1:{free_port()}", state_dir=tmp_path)
    process = s3_process(settings)
    process.start(timeout=120)  # the first start installs s3rver with npm
    yield f"{settings.s3_endpoint}/tansu"
    process.stop()


def request(url: str, method: str = "GET", data: bytes | None = None, **headers: str):
    """(status, ETag, body) of one request; errors are answers too."""
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.headers.get("ETag"), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, None, exc.read()


def test_create_only_once_and_update_only_from_the_current_version(s3):
    url = f"{s3}/clusters/c/watermark.json"
    assert request(url, "PUT", b"a", **{"If-None-Match": "*"})[0] == 200
    status, _, body = request(url, "PUT", b"b", **{"If-None-Match": "*"})
    assert status == 412 and b"PreconditionFailed" in body
    _, etag, body = request(url)
    assert body == b"a" and etag == STORED
    assert request(url, "PUT", b"c", **{"If-Match": '"stale"'})[0] == 412
    assert request(url, "PUT", b"c", **{"If-Match": etag})[0] == 200
    assert request(url)[2] == b"c"
    assert request(f"{s3}/clusters/c/none.json", "PUT", b"x", **{"If-Match": etag})[0] == 404
    assert request(url, "PUT", b"d")[0] == 200  # unconditional writes still overwrite
    assert request(url)[2] == b"d"


def test_racing_compare_and_swap_loses_no_increment(s3):
    """Six writers add one to a counter 15 times each, retrying on 412: 90 in the end."""
    url = f"{s3}/clusters/c/counter.json"
    assert request(url, "PUT", b"0")[0] == 200
    conflicts = []

    def writer() -> None:
        for _ in range(15):
            while True:
                _, etag, body = request(url)
                status = request(url, "PUT", b"%d" % (int(body) + 1), **{"If-Match": etag})[0]
                if status == 200:
                    break
                assert status == 412
                conflicts.append(1)

    threads = [threading.Thread(target=writer) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert int(request(url)[2]) == 90
    assert conflicts, "the writers never raced: the test proves nothing"


def test_a_listing_continues_past_a_page(s3):
    """Tansu lists a partition's batches on every fetch; past a page (1,000 on S3) s3rver
    makes a DES continuation token, which OpenSSL 3 keeps in its legacy provider."""
    for name in ("a", "b", "c"):
        assert request(f"{s3}/clusters/c/records/{name}", "PUT", b"x")[0] == 200
    status, _, body = request(f"{s3}?list-type=2&prefix=clusters/c/records/&max-keys=2")
    assert status == 200, body
    token = re.search(rb"<NextContinuationToken>(.+?)</NextContinuationToken>", body)
    assert token is not None, body
    query = urllib.parse.urlencode({"list-type": 2, "continuation-token": token[1].decode()})
    status, _, body = request(f"{s3}?{query}&prefix=clusters/c/records/")
    assert status == 200 and re.findall(rb"<Key>(.+?)</Key>", body) == [b"clusters/c/records/c"]
