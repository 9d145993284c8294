"""A news site's traffic against the newsroom gateway.

Mostly readers: the article list and articles, some comment threads; a few
logins, comments and articles. Every simulated user registers and logs in on
start, so the write paths run with real tokens.

    locust -f loadtest/locustfile.py --host http://127.0.0.1:8080
    make loadtest                      # headless, reports in loadtest/reports/

Headless runs exit non-zero when the failure ratio or the overall p95 breaks
a threshold: --max-fail-ratio (LOCUST_MAX_FAIL_RATIO, default 0.01) and
--max-p95-ms (LOCUST_MAX_P95_MS, default 500).
"""

import random
import uuid

from locust import FastHttpUser, between, events, task

PASSWORD = "loadtest-password"

# Article ids seen in list pages, shared by the users of this process so
# readers open articles that exist.
known_articles: list[int] = []


@events.init_command_line_parser.add_listener
def _thresholds(parser):
    parser.add_argument("--max-fail-ratio", type=float, default=0.01,
                        env_var="LOCUST_MAX_FAIL_RATIO",
                        help="fail the run above this ratio of failed requests")
    parser.add_argument("--max-p95-ms", type=float, default=500,
                        env_var="LOCUST_MAX_P95_MS",
                        help="fail the run when the overall p95 exceeds this")


@events.quitting.add_listener
def _check_thresholds(environment, **_kwargs):
    total = environment.stats.total
    options = environment.parsed_options
    if options is None or total.num_requests == 0:
        return
    p95 = total.get_response_time_percentile(0.95)
    problems = []
    if total.fail_ratio > options.max_fail_ratio:
        problems.append(f"fail ratio {total.fail_ratio:.2%} > {options.max_fail_ratio:.2%}")
    if p95 > options.max_p95_ms:
        problems.append(f"p95 {p95:.0f} ms > {options.max_p95_ms:.0f} ms")
    # The thresholds alone decide the exit code (locust's own default is 1
    # on any failed request, which a long run under load always has).
    if problems:
        print("THRESHOLDS FAILED: " + "; ".join(problems))
        environment.process_exit_code = 1
    else:
        print(f"thresholds held: fail ratio {total.fail_ratio:.2%}, p95 {p95:.0f} ms")
        environment.process_exit_code = 0


class Reader(FastHttpUser):
    wait_time = between(0.5, 2)

    def on_start(self):
        self.username = "lt-" + uuid.uuid4().hex[:20]
        self.client.post("/api/v1/users", name="/api/v1/users",
                         json={"username": self.username, "password": PASSWORD,
                               "display_name": "Load Test"})
        self.token = None
        self.login()
        if not known_articles:
            self.list_articles()
        if not known_articles:
            self.write_article()

    def auth(self):
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def article_id(self):
        return random.choice(known_articles) if known_articles else 1

    @task(48)
    def list_articles(self):
        with self.client.get("/api/v1/articles?limit=20", name="/api/v1/articles",
                             catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"status {response.status_code}")
                return
            ids = [item["id"] for item in response.json()["items"]]
            for article in ids:
                if article not in known_articles:
                    known_articles.append(article)
            del known_articles[:-500]

    @task(33)
    def read_article(self):
        self.client.get(f"/api/v1/articles/{self.article_id()}", name="/api/v1/articles/[id]")

    @task(15)
    def read_comments(self):
        self.client.get(f"/api/v1/articles/{self.article_id()}/comments?limit=20",
                        name="/api/v1/articles/[id]/comments")

    @task(2)
    def write_comment(self):
        self.client.post(f"/api/v1/articles/{self.article_id()}/comments",
                         name="/api/v1/articles/[id]/comments", headers=self.auth(),
                         json={"body": "Written by a load test reader."})

    @task(1)
    def write_article(self):
        with self.client.post("/api/v1/articles", name="/api/v1/articles", headers=self.auth(),
                              json={"title": "Load test headline",
                                    "body": "Markets moved while the load test ran."},
                              catch_response=True) as response:
            if response.status_code != 201:
                response.failure(f"status {response.status_code}")
                return
            known_articles.append(response.json()["id"])

    @task(1)
    def login(self):
        with self.client.post("/api/v1/sessions", name="/api/v1/sessions",
                              json={"username": self.username, "password": PASSWORD},
                              catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"status {response.status_code}")
                return
            self.token = response.json()["token"]
