"""UI auth: login sets an HttpOnly SameSite=Strict session cookie, logout ends it, forms need
the session's CSRF token, and a read key sees no mutating buttons and is refused anyway."""

from __future__ import annotations

from ui_helpers import csrf_of, make_deployment

from fleetflow.states import State, StateType


def test_pages_redirect_to_login_and_htmx_requests_get_hx_redirect(ui):
    anonymous = ui.browser(None)
    response = anonymous.get("/runs?state=RUNNING")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Fruns%3Fstate%3DRUNNING"
    partial = anonymous.get("/runs/table", headers={"HX-Request": "true"})
    assert partial.status_code == 401 and partial.headers["hx-redirect"].startswith("/login?next=")
    assert 'name="key"' in anonymous.get("/login").text


def test_login_sets_a_strict_httponly_cookie_and_refuses_bad_keys(ui):
    anonymous = ui.browser(None)
    bad = anonymous.post("/login", data={"key": "ffk_not-a-key"})
    assert bad.status_code == 401 and "unknown, revoked or expired" in bad.text
    token = anonymous.post("/login", data={"key": "ffr_run-token"})
    assert token.status_code == 401 and "starts with ffk_" in token.text
    good = anonymous.post("/login", data={"key": ui.keys["read"], "next": "//evil.example/x"})
    assert good.status_code == 303 and good.headers["location"] == "/runs"  # no open redirect
    cookie = good.headers["set-cookie"]
    assert cookie.startswith("fleetflow_session=") and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert anonymous.get("/runs").status_code == 200


def test_logout_needs_csrf_and_ends_the_session(ui):
    browser = ui.browser("read")
    page = browser.get("/runs").text
    assert browser.post("/logout", data={}).status_code == 403
    out = browser.post("/logout", data={"csrf": csrf_of(page)})
    assert out.status_code == 303 and 'fleetflow_session=""' in out.headers["set-cookie"]
    browser.cookies.clear()
    assert browser.get("/runs").status_code == 303


def test_a_revoked_key_ends_its_session(ui):
    browser = ui.browser("run")
    assert browser.get("/runs").status_code == 200
    ui.store.revoke_api_key("run-key")
    ui.app.state.fleetflow.authenticator.forget()  # the public hook: revocations apply at once
    assert browser.get("/runs").status_code == 303


def test_forms_without_the_session_csrf_token_are_refused(ui):
    dep = make_deployment(ui.store)
    browser = ui.browser("run")
    assert browser.post(f"/deployments/{dep.id}/quick-run", data={}).status_code == 403
    assert browser.post(f"/deployments/{dep.id}/quick-run", data={"csrf": "0" * 64}).status_code == 403
    other = ui.browser("admin")  # another key's token does not fit this session
    foreign = csrf_of(other.get("/deployments").text)
    assert browser.post(f"/deployments/{dep.id}/quick-run", data={"csrf": foreign}).status_code == 403
    assert ui.store.read_flow_runs(deployment_id=dep.id) == []
    token = csrf_of(browser.get("/deployments").text)
    assert browser.post(f"/deployments/{dep.id}/quick-run", data={"csrf": token}).status_code == 303
    assert len(ui.store.read_flow_runs(deployment_id=dep.id)) == 1


def test_a_read_key_sees_no_mutating_buttons_and_is_refused(ui):
    dep = make_deployment(ui.store)
    run = ui.store.create_flow_run_from_deployment(dep.id)
    finished = ui.store.create_flow_run_from_deployment(dep.id, idempotency_key="done")
    ui.store.set_flow_run_state(finished.id, State(type=StateType.FAILED, message="boom"), force=True)
    reader = ui.browser("read")
    deployments = reader.get("/deployments").text
    run_page = reader.get(f"/runs/{run.id}").text
    assert "Quick run" not in deployments and "Custom run" not in deployments
    assert "/cancel" not in run_page and "/retry" not in reader.get(f"/runs/{finished.id}").text
    token = csrf_of(run_page)  # the logout form's token: valid for this session
    assert reader.post(f"/deployments/{dep.id}/quick-run", data={"csrf": token}).status_code == 403
    assert reader.post(f"/runs/{run.id}/cancel", data={"csrf": token}).status_code == 403
    assert reader.post(f"/runs/{finished.id}/retry", data={"csrf": token}).status_code == 403
    assert reader.post(f"/deployments/{dep.id}/run", data={"csrf": token, "p.n": "3"}).status_code == 403
    assert ui.store.read_flow_run(run.id).state_type is StateType.SCHEDULED
    assert ui.store.read_flow_run(finished.id).state_type is StateType.FAILED
    assert len(ui.store.read_flow_runs(deployment_id=dep.id)) == 2
    runner = ui.browser("run")
    assert "Quick run" in runner.get("/deployments").text and "/cancel" in runner.get(f"/runs/{run.id}").text


def test_ui_actions_are_audited(ui):
    dep = make_deployment(ui.store)
    browser = ui.browser("run")
    token = csrf_of(browser.get("/deployments").text)
    browser.post(f"/deployments/{dep.id}/quick-run", data={"csrf": token})
    actions = [(a["actor"], a["action"]) for a in ui.store.read_audit()]
    assert ("ui:run-key", "create_flow_run_from_deployment") in actions
