"""Adapted from Prefect 2 docs/concepts/variables.md ("Accessing variables") and
docs/concepts/artifacts.md (link, markdown and table artifacts): only the imports changed."""

from fleetflow import flow, task, variables
from fleetflow.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact
from fleetflow.variables import Variable
from compat_docs import cli


def test_accessing_variables(temp_store):
    assert cli("variable", "set", "the_answer", "42").returncode == 0

    @flow
    def my_flow():
        answer = Variable.get("the_answer")
        return answer.value, variables.get("the_answer"), variables.get("nope", default="fallback")

    assert my_flow() == ("42", "42", "fallback")
    out = cli("variable", "ls").stdout
    assert "the_answer" in out and "42" in out


def test_link_artifact(temp_store):
    @task
    def my_first_task():
        create_link_artifact(key="irregular-data", link="https://nyc3.digitaloceanspaces.com/my-bucket-name/highly_variable_data.csv",
                             description="## Highly variable data")

    @task
    def my_second_task():
        create_link_artifact(key="irregular-data", link="https://nyc3.digitaloceanspaces.com/my-bucket-name/low_pred_data.csv",
                             description="# Low prediction accuracy")

    @flow
    def my_flow():
        my_first_task()
        my_second_task()

    my_flow()
    history = temp_store.read_artifacts(key="irregular-data")
    assert [a.data["link"].rsplit("/", 1)[1] for a in history] == ["low_pred_data.csv", "highly_variable_data.csv"]
    out = cli("artifact", "inspect", "irregular-data").stdout
    assert "low_pred_data.csv" in out


def test_markdown_artifact(temp_store):
    @task
    def markdown_task():
        na_revenue = 500000
        markdown_report = f"""# Sales Report

## Summary

In the past quarter, our company saw a significant increase in sales, with a total revenue of $1,000,000.

| Region        | Revenue |
|:--------------|-------:|
| North America | ${na_revenue:,} |
"""
        create_markdown_artifact(key="gtm-report", markdown=markdown_report, description="Quarterly Sales Report")

    @flow()
    def my_flow():
        markdown_task()

    my_flow()
    run = temp_store.read_flow_runs(flow_name="my-flow")[0]
    (artifact,) = temp_store.read_artifacts(flow_run_id=run.id)
    assert artifact.key == "gtm-report" and "$500,000" in artifact.data and artifact.description == "Quarterly Sales Report"
    shown = cli("flow-run", "inspect", run.id).stdout
    assert "gtm-report" in shown


def test_table_artifact(temp_store):
    highest_churn_possibility = [
        {"customer_id": "12345", "name": "John Smith", "churn_probability": 0.85},
        {"customer_id": "56789", "name": "Jane Jones", "churn_probability": 0.65},
    ]

    @flow
    def my_fn():
        create_table_artifact(key="personalized-reachout", table=highest_churn_possibility,
                              description="# Marvin, please reach out to these customers today!")

    my_fn()
    (artifact,) = temp_store.read_artifacts(key="personalized-reachout")
    assert artifact.type == "table" and artifact.data == highest_churn_possibility
    assert "personalized-reachout" in cli("artifact", "ls").stdout
