import gzip

import pytest

from nucfm.errors import InputError
from nucfm.io.fasta import Record, read_fasta, write_fasta


def test_multiline_crlf_blank_lines_and_descriptions(tmp_path):
    p = tmp_path / "a.fa"
    p.write_bytes(b">x desc here\r\nAC GU\r\n\r\nGG\r\n;comment\n>y\n>z\nA\n")
    recs = list(read_fasta(p))
    assert recs == [Record("x", "ACGUGG", "desc here"), Record("y", "", ""), Record("z", "A", "")]


def test_gzip_detected_by_content_not_name(tmp_path):
    p = tmp_path / "a.txt"
    with gzip.open(p, "wt") as f:
        f.write(">a\nACGU\n")
    assert [r.seq for r in read_fasta(p)] == ["ACGU"]


def test_fastq(tmp_path):
    p = tmp_path / "a.fq"
    p.write_text("@r1\nACGU\n+\nIIII\n@r2 x\nGG\n+\nII\n")
    assert [(r.id, r.seq) for r in read_fasta(p)] == [("r1", "ACGU"), ("r2", "GG")]
    p.write_text("@r1\nACGU\n")
    with pytest.raises(InputError, match="incomplete"):
        list(read_fasta(p))


@pytest.mark.parametrize("data,msg", [(b"", "empty"), (b"ACGU\n", "not FASTA"), (b"\x00\x01\x02", "binary")])
def test_errors(tmp_path, data, msg):
    p = tmp_path / "bad"
    p.write_bytes(data)
    with pytest.raises(InputError, match=msg):
        list(read_fasta(p))
    with pytest.raises(InputError, match="no such file"):
        list(read_fasta(tmp_path / "missing.fa"))
    with pytest.raises(InputError, match="directory"):
        list(read_fasta(tmp_path))


def test_write_read_roundtrip(tmp_path):
    recs = [Record("a", "ACGU" * 50, "d"), Record("b", "", "")]
    write_fasta(recs, tmp_path / "o.fa", width=60)
    assert list(read_fasta(tmp_path / "o.fa")) == recs
