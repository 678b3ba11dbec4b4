-- wrk script for POST /echo with a small JSON document (bench/server/run.py).
wrk.method = "POST"
wrk.path = "/echo"
wrk.body = '{"id": 42, "name": "weft", "tags": ["a", "b", "c"], "nested": {"x": 1.5, "ok": true}}'
wrk.headers["Content-Type"] = "application/json"
