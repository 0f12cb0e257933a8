"""Locust user that produced the fixture CSVs in this directory (see README.md)."""
import random

from locust import HttpUser, constant_throughput, task


class InferUser(HttpUser):
    wait_time = constant_throughput(5)

    @task(10)
    def infer(self):
        self.client.post("/api/v1/infer",
                         json={"input_data": [[random.random() for _ in range(64)]]})

    @task(1)
    def bad_request(self):
        # a deliberately malformed request so the _failures.csv has rows
        with self.client.post("/api/v1/infer", json={"input_data": "not a list"}, catch_response=True) as r:
            if r.status_code == 400:
                r.failure("HTTP 400 (deliberate bad request)")
