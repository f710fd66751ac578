"""`ostiary demo`: the Quick start showcase must pass every step it shows."""

from __future__ import annotations

from cli_run import Run


def test_demo_round_trip_and_every_forgery_refused(ostiary: Run) -> None:
    result = ostiary("demo")
    assert result.status == 0, result.out
    assert result.err == ""
    out = result.out
    assert "accepted: {" in out
    for refusal in [
        "refused (BadSignature): the signature is invalid",
        "refused (UnsupportedAlgorithm): algorithm 'none' is not supported",
        "refused (InvalidKey): these bytes hold an encoded key",
        "refused (ExpiredToken): the token has expired",
        "refused (InvalidAudience): the token's audience is not accepted",
    ]:
        assert refusal in out
    assert "UNEXPECTED" not in out
    assert out.rstrip().endswith(
        "Every forgery was refused. Next: ostiary jwt --help, ostiary keys --help"
    )
