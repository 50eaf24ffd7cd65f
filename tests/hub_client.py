"""A person using the class hub over HTTP, as a browser would: the tests' and benchmarks' client.

Used by tests/hub/test_hub.py and benchmarks/bench_hub.py; it lives with the tests because
the course itself never needs it (it needs ``requests``, a test dependency).
"""

from __future__ import annotations

import requests

from autograder.hub import HubError, wait_for

__all__ = ["HubUser"]


class HubUser:
    """One person using the hub through its HTTP interfaces, as a browser would.

    Logs in with the form, asks for an API token (as the token page does),
    then uses the hub's REST API, the Jupyter contents API and nbgrader's
    server extensions with that token. Every call is bounded by ``timeout``.
    """

    def __init__(self, url: str, name: str, password: str, timeout: float = 60):
        self.url, self.name, self.password, self.timeout = url, name, password, timeout
        self.http = requests.Session()
        self.token: str | None = None

    def login(self) -> None:
        r = self.http.get(f"{self.url}/hub/login", timeout=self.timeout)
        r.raise_for_status()
        xsrf = self.http.cookies.get("_xsrf", "")
        r = self.http.post(f"{self.url}/hub/login?next=", timeout=self.timeout, allow_redirects=False,
                           data={"username": self.name, "password": self.password, "_xsrf": xsrf})
        if r.status_code != 302:
            raise HubError(f"{self.name} could not log in (HTTP {r.status_code})")
        xsrf = self.http.cookies.get("_xsrf", xsrf)
        r = self.http.post(f"{self.url}/hub/api/users/{self.name}/tokens", timeout=self.timeout,
                           headers={"X-XSRFToken": xsrf}, json={"note": "course round trip", "expires_in": 3600})
        r.raise_for_status()
        self.token = r.json()["token"]
        self.http.cookies.clear()  # from here on, the token alone says who this is
        self.http.headers["Authorization"] = f"token {self.token}"

    def start_server(self) -> None:
        r = self.http.post(f"{self.url}/hub/api/users/{self.name}/server", timeout=self.timeout)
        if r.status_code not in (201, 202, 400):  # 400: already running
            raise HubError(f"{self.name}'s server did not start: HTTP {r.status_code} {r.text[:200]}")

        def ready():
            model = self.http.get(f"{self.url}/hub/api/users/{self.name}", timeout=self.timeout).json()
            server = model.get("servers", {}).get("", {})
            return server.get("ready")

        wait_for(ready, self.timeout * 2, f"{self.name}'s server to be ready", interval=0.5)

    def server(self, path: str) -> str:
        return f"{self.url}/user/{self.name}/{path.lstrip('/')}"

    def post(self, path: str, **kw):
        r = self.http.post(self.server(path), timeout=self.timeout, **kw)
        r.raise_for_status()
        return r.json() if r.content else None

    def get(self, path: str, **kw):
        r = self.http.get(self.server(path), timeout=self.timeout, **kw)
        r.raise_for_status()
        return r.json()

    # nbgrader's assignment list (the student's side)
    def assignment(self, action: str, course_id: str, lesson: str):
        return self.post(f"assignments/{action}", params={"course_id": course_id, "assignment_id": lesson})

    def assignments(self, course_id: str) -> dict:
        return self.get("assignments", params={"course_id": course_id})

    # Jupyter's contents API
    def read_notebook(self, path: str) -> dict:
        return self.get(f"api/contents/{path}", params={"content": 1})["content"]

    def write_notebook(self, path: str, notebook: dict) -> None:
        r = self.http.put(self.server(f"api/contents/{path}"), timeout=self.timeout,
                          json={"type": "notebook", "format": "json", "content": notebook})
        r.raise_for_status()

    def list_dir(self, path: str) -> list[dict]:
        return self.get(f"api/contents/{path}")["content"]
