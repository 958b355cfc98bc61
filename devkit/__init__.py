"""What exists for tests and demos: fake CRM servers, the sample-data generator, the demo
command (`make run`) and the local Airflow helper.

It may import anything (`night`, `extract`); nothing imports it but tests, the demo and
benchmarks. Production code never needs it.
"""
