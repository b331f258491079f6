"""Sign-in: the real client through the fake transport; not signed in, no project, offline."""

from __future__ import annotations

import json

import pytest

from geodl_plugin.core.earthengine import session
from geodl_plugin.core.runtime.errors import GeoDLError

PROJECT = "test-project"  # the fake transport's project


def test_connect_with_project_loads_algorithms(fake_ee):
    import ee

    state = session.connect(PROJECT, credentials=None, http_transport=fake_ee, max_retries=0)
    assert state.connected and state.project == PROJECT
    assert session.require_connected() == PROJECT
    # the real client built its Image methods from the served algorithm list
    assert hasattr(ee.Image, "neighborhoodToArray")


def test_not_signed_in_says_run_earthengine_authenticate(fake_ee):
    with pytest.raises(GeoDLError, match="earthengine authenticate"):
        session.connect(PROJECT, http_transport=fake_ee, max_retries=0)
    assert not session.state().connected
    with pytest.raises(GeoDLError, match="not connected"):
        session.require_connected()


def test_no_project_says_where_to_set_it(fake_ee):
    with pytest.raises(GeoDLError, match="GeoDL dock") as info:
        session.connect("", credentials=None, http_transport=fake_ee, max_retries=0)
    assert "Cloud project" in str(info.value)


def test_network_down_is_a_clear_error(fake_ee):
    fake_ee.network_down = True
    with pytest.raises(GeoDLError, match="Cannot reach Earth Engine") as info:
        session.connect(PROJECT, credentials=None, http_transport=fake_ee, max_retries=0)
    assert "internet connection" in str(info.value)
    assert not session.state().connected


def test_bad_service_account_key(fake_ee, tmp_path):
    key = tmp_path / "key.json"
    key.write_text(json.dumps({"type": "authorized_user"}))
    with pytest.raises(GeoDLError, match="not a service-account key"):
        session.connect(PROJECT, key_file=str(key), http_transport=fake_ee)
    with pytest.raises(GeoDLError, match="does not exist"):
        session.connect(PROJECT, key_file=str(tmp_path / "missing.json"), http_transport=fake_ee)


def test_state_never_holds_credentials(ee_session):
    text = repr(session.state())
    assert "token" not in text.lower() and "private_key" not in text
