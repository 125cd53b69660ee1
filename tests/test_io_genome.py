"""Genome access: coordinates, padding, case, compression, contig names."""

import gzip
import struct
import zlib

import pytest

from nucfm.errors import InputError
from nucfm.io.genome import Genome, parse_aliases, reverse_complement

CONTIGS = {"chrA": "ACGTacgtNNACGTTTGCA", "chrB": "GGGCCCAAAT" * 3}


def write_fasta(path, contigs=CONTIGS, width=7):
    with open(path, "w") as f:
        for name, seq in contigs.items():
            f.write(f">{name} some description\n")
            for i in range(0, len(seq), width):
                f.write(seq[i : i + width] + "\n")
    return path


def write_bgzip(path, text: bytes, block=16):
    """A BGZF file: gzip members of <= ``block`` bytes, each with the 'BC' extra field."""
    with open(path, "wb") as f:
        for i in range(0, len(text), block):
            data = text[i : i + block]
            c = zlib.compressobj(6, zlib.DEFLATED, -15)
            body = c.compress(data) + c.flush()
            bsize = 12 + 6 + len(body) + 8 - 1
            f.write(b"\x1f\x8b\x08\x04" + b"\0" * 4 + b"\0\xff" + struct.pack("<H", 6) + b"BC"
                    + struct.pack("<HH", 2, bsize) + body + struct.pack("<II", zlib.crc32(data), len(data)))
        f.write(bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000"))  # EOF block


@pytest.fixture(params=["plain", "gzip", "bgzip"])
def genome(request, tmp_path):
    plain = write_fasta(tmp_path / "g.fa")
    if request.param == "plain":
        return Genome(plain)
    if request.param == "gzip":
        (tmp_path / "g.fa.gz").write_bytes(gzip.compress(plain.read_bytes()))
        return Genome(tmp_path / "g.fa.gz")
    write_bgzip(tmp_path / "g.fa.bgz", plain.read_bytes())
    return Genome(tmp_path / "g.fa.bgz")


def test_fetch_half_open_and_case(genome):
    assert genome.lengths == {"chrA": 19, "chrB": 30}
    assert genome.fetch("chrA", 0, 4) == "ACGT"
    assert genome.fetch("chrA", 4, 10) == "acgtNN"  # soft-masking kept
    assert genome.fetch("chrA", 18, 19) == "A"
    assert genome.fetch("chrB", 5, 5) == ""


def test_fetch_pads_past_ends(genome):
    assert genome.fetch("chrA", -3, 2) == "NNNAC"
    assert genome.fetch("chrA", 17, 22) == "CANNN"
    assert genome.fetch("chrA", -2, 21) == "NN" + CONTIGS["chrA"] + "NN"
    assert genome.fetch("chrA", 25, 28) == "NNN"
    assert genome.fetch("chrA", -6, -4) == "NN"
    with pytest.raises(InputError, match="past the contig"):
        genome.fetch("chrA", 17, 22, pad=None)


def test_unknown_contig_lists_contigs(genome):
    msg = r"'A' is not in .*did you mean 'chrA'.*chrA \(19 bp\), chrB \(30 bp\).*--chrom-alias"
    with pytest.raises(InputError, match=msg):
        genome.fetch("A", 0, 1)


def test_aliases(tmp_path):
    path = write_fasta(tmp_path / "g.fa")
    (tmp_path / "alias.tsv").write_text("# input\tgenome\n1\tchrA\n2,chrB\n")
    aliases = parse_aliases(["X=chrA", str(tmp_path / "alias.tsv")])
    assert aliases == {"X": "chrA", "1": "chrA", "2": "chrB"}
    g = Genome(path, aliases=aliases)
    assert g.fetch("1", 0, 3) == g.fetch("chrA", 0, 3) == "ACG"
    assert "2" in g and "3" not in g
    with pytest.raises(InputError, match="alias target"):
        Genome(path, aliases={"1": "chrZ"})
    with pytest.raises(InputError, match="neither"):
        parse_aliases(["nonsense"])


def test_bad_inputs(tmp_path):
    with pytest.raises(InputError, match="no such"):
        Genome(tmp_path / "missing.fa")
    (tmp_path / "dup.fa.gz").write_bytes(gzip.compress(b">a\nAC\n>a\nGG\n"))
    with pytest.raises(InputError, match="twice"):
        Genome(tmp_path / "dup.fa.gz")
    (tmp_path / "x.gz").write_bytes(gzip.compress(b"hello\n"))
    with pytest.raises(InputError, match="not FASTA"):
        Genome(tmp_path / "x.gz")


def test_readonly_directory_index_goes_to_cache(tmp_path, monkeypatch):
    ro = tmp_path / "ro"
    ro.mkdir()
    write_fasta(ro / "g.fa")
    monkeypatch.setattr("nucfm.io.genome.os.access", lambda *a: False)  # chmod does not bind root
    monkeypatch.setenv("NUCFM_HOME", str(tmp_path / "home"))
    g = Genome(ro / "g.fa")
    assert g.fetch("chrB", 0, 3) == "GGG"
    assert not (ro / "g.fa.fai").exists()
    assert len(list((tmp_path / "home" / "fai").iterdir())) == 1


def test_reverse_complement():
    assert reverse_complement("ACGTacgtN") == "NacgtACGT"
    assert reverse_complement("RYKM") == "KMRY"
    s = "ACGTTGCAnnRY"
    assert reverse_complement(reverse_complement(s)) == s
