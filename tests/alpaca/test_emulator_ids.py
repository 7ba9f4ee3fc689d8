"""The Alpaca emulator's order ids: UUIDs that never repeat across ledgers, and stay the same for one ledger."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import workbench
from workbench.emulators.alpaca.book import Book
from workbench.marketdata.sim import SimProvider
from workbench.paper.config import PaperConfig
from workbench.paper.engine import PaperEngine


@pytest.fixture
def engines() -> Any:
    made: list[PaperEngine] = []

    def make(db: str | Path = ":memory:", orders: int = 1) -> PaperEngine:
        engine = PaperEngine(PaperConfig(db_path=str(db)), SimProvider())
        made.append(engine)
        for _ in range(orders):
            engine.submit(workbench.NeutralOrder(symbol="AAPL", side="buy", qty=1))
        return engine

    yield make
    for engine in made:
        engine.close()


def first_id(engine: PaperEngine) -> str:
    """The Alpaca id an emulator started over ``engine`` gives (or gave) the ledger's first order."""
    book = Book(engine, publish=lambda message: None, wake=lambda: None)
    try:
        return book.alpaca_id("P000000001")
    finally:
        book.close()


def test_in_memory_ledgers_with_orders_never_share_ids(engines: Any) -> None:
    assert first_id(engines()) != first_id(engines())


def test_a_ledger_keeps_its_ids_across_restarts_and_a_new_one_of_the_same_name_does_not(engines: Any,
                                                                                         tmp_path: Path) -> None:
    db = tmp_path / "x.sqlite"
    engine = engines(db, orders=0)
    before = first_id(engine)  # an emulator over a fresh ledger...
    engine.submit(workbench.NeutralOrder(symbol="AAPL", side="buy", qty=1))  # ...takes an order
    assert first_id(engine) == before  # a restart over the same ledger
    engine.close()
    db.unlink()  # start afresh: the ledger is deleted, its id file is left behind
    assert first_id(engines(db, orders=0)) != before


def test_two_ledgers_whose_names_differ_only_in_suffix_have_their_own_ids(engines: Any, tmp_path: Path) -> None:
    assert first_id(engines(tmp_path / "y.db", orders=0)) != first_id(engines(tmp_path / "y.sqlite", orders=0))
    assert {p.name for p in tmp_path.glob("*.alpaca-links.json")} == {"y.db.alpaca-links.json",
                                                                      "y.sqlite.alpaca-links.json"}


def test_a_ledger_from_before_namespaces_keeps_its_ids_and_replace_links(engines: Any, tmp_path: Path) -> None:
    import uuid

    engine = engines(tmp_path / "old.sqlite", orders=2)
    (tmp_path / "old.alpaca-links.json").write_text(json.dumps({"P000000001": "P000000002"}))  # the old file
    book = Book(engine, publish=lambda message: None, wake=lambda: None)
    try:
        legacy = uuid.UUID("5f0c6f2e-8f55-4d1b-9a55-6d2f3c9a7a10")
        assert book.entries["P000000001"].id == str(uuid.uuid5(legacy, "order:P000000001"))
        assert book.entries["P000000001"].replaced_by == "P000000002"
    finally:
        book.close()


@pytest.mark.parametrize("content", ["{not json", '{"namespace": "zz", "links": {}}', "[]"])
def test_an_unreadable_id_file_is_a_config_error(engines: Any, tmp_path: Path, content: str) -> None:
    engine = engines(tmp_path / "z.sqlite")
    (tmp_path / "z.sqlite.alpaca-links.json").write_text(content)
    woken: list[int] = []
    with pytest.raises(workbench.ConfigError) as info:
        Book(engine, publish=lambda message: None, wake=lambda: woken.append(1))
    assert "z.sqlite.alpaca-links.json" in str(info.value)
    engine.submit(workbench.NeutralOrder(symbol="AAPL", side="buy", qty=1))
    assert woken == []  # the refused book left no listener on the engine
