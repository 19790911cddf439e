"""Load testing the scoring API with Locust: request traffic, the headless run, its report and SLO verdict."""
