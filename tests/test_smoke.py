def test_a_case_runs_end_to_end(world):
    case = world.case()
    assert case["lead_agency"] == "police"
    assert sorted(case["participants"]) == ["health", "police", "slt"]
    resp = world["police"].get(f"/api/v1/cases/{case['id']}")
    assert resp.status_code == 200
    assert resp.headers["ETag"] == '"1"'
