"""The committed gRPC code is what service.api.generate makes of proto/, and it works."""

from __future__ import annotations

import shutil
from pathlib import Path

from service.api import generate

COMMITTED = generate.API_DIR


def generated_files(root: Path) -> dict[str, bytes]:
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and generate.is_generated(path)
    }


def test_committed_code_matches_the_protos(tmp_path: Path) -> None:
    generate.generate(out=tmp_path)
    fresh = generated_files(tmp_path)
    committed = generated_files(COMMITTED)
    stems = [name.removesuffix(".proto") for name in generate.proto_files()]
    assert stems == [
        "rulebook/v1/audit_service",
        "rulebook/v1/decisions",
        "rulebook/v1/evaluation_service",
        "rulebook/v1/events",
        "rulebook/v1/rulebook_service",
        "rulebook/v1/rulebook_sets",
        "rulebook/v1/simulation_service",
    ]
    assert sorted(fresh) == sorted(
        stem + suffix for stem in stems for suffix in generate.GENERATED_SUFFIXES
    )
    assert sorted(committed) == sorted(fresh), "run `make proto` and commit the result"
    for name, content in fresh.items():
        assert committed[name] == content, f"{name} is stale: run `make proto` and commit it"


def test_generated_imports_point_into_the_package(tmp_path: Path) -> None:
    generate.generate(out=tmp_path)
    code = (tmp_path / "rulebook/v1/evaluation_service_pb2.py").read_text()
    assert "from service.api.rulebook.v1 import events_pb2" in code
    assert "'service.api.rulebook.v1.evaluation_service_pb2'" in code
    for path in tmp_path.rglob("*.py*"):
        lines = path.read_text().splitlines()
        assert not [line for line in lines if line.startswith(("from rulebook", "import rulebook"))]


def test_a_proto_edit_changes_the_output_and_stale_modules_go(tmp_path: Path) -> None:
    protos = tmp_path / "proto"
    shutil.copytree(generate.PROTO_DIR / "rulebook", protos / "rulebook")
    events = protos / "rulebook/v1/events.proto"
    events.write_text(events.read_text() + "\nmessage Extra {\n  string note = 1;\n}\n")
    out = tmp_path / "out"
    stale = out / "rulebook/v1/gone_pb2.py"
    stale.parent.mkdir(parents=True)
    stale.write_text("# from a deleted proto\n")
    keep = out / "rulebook/v1/__init__.py"
    keep.write_text("")
    generate.generate(out=out, proto_dir=protos)
    assert not stale.exists() and keep.exists()
    edited = generated_files(out)
    committed = generated_files(COMMITTED)
    assert sorted(edited) == sorted(committed)
    assert edited["rulebook/v1/events_pb2.py"] != committed["rulebook/v1/events_pb2.py"]
    assert edited["rulebook/v1/decisions_pb2.py"] == committed["rulebook/v1/decisions_pb2.py"]


def test_evaluate_request_round_trips() -> None:
    from service.api.rulebook.v1 import evaluation_service_pb2 as pb
    from service.api.rulebook.v1 import events_pb2

    request = pb.EvaluateRequest(events=[
        events_pb2.Event(
            event_id="e1",
            merchant_id="m1",
            event_time="2024-07-01T09:00:00+08:00",
            listing_updated=events_pb2.ListingUpdated(
                listing_id="millet", product_group="grain", price=39.9, unit_cost=30.0,
                quality=0.9, promo_signup_price=35.5,
            ),
        ),
        events_pb2.Event(
            event_id="e2",
            merchant_id="m1",
            event_time="2024-07-01T10:00:00+08:00",
            listing_updated=events_pb2.ListingUpdated(listing_id="millet", price=0.0),
        ),
    ])
    wire = request.SerializeToString()
    back = pb.EvaluateRequest.FromString(wire)
    assert back == request
    first, second = back.events
    assert first.WhichOneof("payload") == "listing_updated"
    listing = first.listing_updated
    assert (listing.listing_id, listing.product_group) == ("millet", "grain")
    assert (listing.price, listing.unit_cost, listing.quality) == (39.9, 30.0, 0.9)
    assert listing.HasField("promo_signup_price") and listing.promo_signup_price == 35.5
    # An optional field left out is absent, not 0; a plain double of 0 is just the default.
    assert not second.listing_updated.HasField("promo_signup_price")
    assert second.listing_updated.price == 0.0
    assert type(listing).__module__ == "service.api.rulebook.v1.events_pb2"
    assert pb.DESCRIPTOR.name == "rulebook/v1/evaluation_service.proto"
    assert pb.EvaluateRequest.DESCRIPTOR.full_name == "rulebook.v1.EvaluateRequest"


def test_services_are_generated() -> None:
    from service.api.rulebook.v1 import (
        evaluation_service_pb2,
        evaluation_service_pb2_grpc,
        rulebook_service_pb2,
        rulebook_service_pb2_grpc,
    )

    evaluation = evaluation_service_pb2.DESCRIPTOR.services_by_name["EvaluationService"]
    assert [m.name for m in evaluation.methods] == ["Evaluate", "StreamEvaluate"]
    stream = evaluation.methods_by_name["StreamEvaluate"]
    assert stream.client_streaming and stream.server_streaming
    rulebooks = rulebook_service_pb2.DESCRIPTOR.services_by_name["RulebookService"]
    assert [m.name for m in rulebooks.methods] == [
        "ListRulebookSets", "GetRulebook", "ValidateRulebook", "LoadRulebookSet",
    ]
    for module, name in [(evaluation_service_pb2_grpc, "EvaluationService"),
                         (rulebook_service_pb2_grpc, "RulebookService")]:
        assert hasattr(module, f"{name}Stub") and hasattr(module, f"{name}Servicer")
        assert hasattr(module, f"add_{name}Servicer_to_server")
