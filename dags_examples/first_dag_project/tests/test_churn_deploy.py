"""The DAG runs green against a local MLS server, and MLS holds what it deployed."""


def test_churn_deploy(mls_run_dag, mls_hook):
    run = mls_run_dag("churn_deploy", conf={"version": "v2"}).assert_success()
    assert run.xcom("deploy")["version"] == "v2"
    model = mls_hook.get_manual_model(name="churn", version="v2")
    assert model["model_meta"]["auc"] == 0.91


def test_the_same_dag_again_starts_from_an_empty_mls(mls_run_dag, mls_hook):
    mls_run_dag("churn_deploy").assert_success()  # v1 again: no "exists already"
    assert [m["version"] for m in mls_hook.list_all_manual_models(name="churn")] == ["v1"]
