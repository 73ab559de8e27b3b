"""The origin firewall's inputs (issue 13): the checked-in Cloudflare list is well-formed, dated and sourced, and
the role turns exactly it (plus the extras) into the nftables sets. Behaviour is tested on the nspawn host
(tests/infra/test_hardening.py)."""

from __future__ import annotations

import ipaddress
import re

import pytest
import yaml

from tests.conftest import REPO

pytestmark = pytest.mark.config

LIST = REPO / "ansible/roles/traefik/files/cloudflare-ips.txt"
TEMPLATE = REPO / "ansible/roles/traefik/templates/etc/traefik/origin-firewall.nft.j2"


def ranges() -> list[str]:
    lines = (line.split("#", 1)[0].strip() for line in LIST.read_text().splitlines())
    return [line for line in lines if line]


def test_the_list_names_its_source_and_date() -> None:
    header = LIST.read_text()
    assert "https://www.cloudflare.com/ips-v4" in header and "https://www.cloudflare.com/ips-v6" in header
    assert re.search(r"^# Date: .*\b20\d\d-\d\d-\d\d\b", header, re.M)


def test_every_entry_is_a_canonical_network_and_none_overlap() -> None:
    nets = [ipaddress.ip_network(r, strict=True) for r in ranges()]
    assert [str(n) for n in nets] == ranges()  # canonical spelling, as nft prints it back
    v4 = [n for n in nets if n.version == 4]
    v6 = [n for n in nets if n.version == 6]
    assert len(v4) >= 10 and len(v6) >= 5
    for group in (v4, v6):
        for i, a in enumerate(group):
            assert not any(a.overlaps(b) for b in group[i + 1 :]), a
    assert not any(n.is_private or n.is_loopback for n in nets)


def test_the_role_feeds_the_list_and_the_ports_to_the_ruleset() -> None:
    defaults = yaml.safe_load((REPO / "ansible/roles/traefik/defaults/main.yml").read_text())
    assert "files/cloudflare-ips.txt" in defaults["traefik_origin_edge_ranges"]
    assert defaults["traefik_origin_ports"] == [80, 443]
    assert defaults["traefik_origin_firewall"] is True
    text = TEMPLATE.read_text()
    for needle in ("traefik_origin_allowed", "traefik_origin_ports", 'iifname "lo" accept', "reject with tcp reset"):
        assert needle in text, needle
