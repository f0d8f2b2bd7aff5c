import json
import shutil

import pytest
from switchboard.pipeline.knowledge import KnowledgeBaseError, load_abcd


def test_55_flows_with_steps(data):
    articles = load_abcd(data / "kb" / "abcd")
    assert len(articles) == 55
    by_id = {a.id: a for a in articles}
    pw = by_id["recover_password"]
    assert pw.title == "Recover Password" and pw.flow == "account_access"
    assert pw.actions == ("pull-up-account", "enter-details", "make-password")
    assert len(pw.steps) == 4 and "Pull up Account" in pw.steps[0]
    assert by_id["slow_speed"].title == "Website Too Slow"


def test_missing_and_malformed(tmp_path, data):
    with pytest.raises(KnowledgeBaseError, match="not found"):
        load_abcd(tmp_path)
    for name in ("kb.json", "guidelines.json", "ontology.json"):
        shutil.copy(data / "kb" / "abcd" / name, tmp_path / name)
    (tmp_path / "kb.json").write_text("{broken")
    with pytest.raises(KnowledgeBaseError, match="not valid JSON"):
        load_abcd(tmp_path)
    (tmp_path / "kb.json").write_text(json.dumps({}))
    assert len(load_abcd(tmp_path)) == 55
