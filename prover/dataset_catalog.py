"""The published benchmarks by name: which file, where it comes from, and which Lean it targets.

A pass rate means nothing without the exact problems and the Lean they were checked with, so every
named dataset pins its file by SHA-256, names its source (repository and commit) and license, and
names the Lean environment it targets (`v4_9`, `v4_27`, ...: the `vMAJOR_MINOR` of its toolchain,
the names `make lean ENV=...` installs). An evaluation reports all of it (`revision`).
Provenance of the newer files: shared/data/benchmarks/SOURCES.md.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

DEEPSEEK = "deepseek-ai/DeepSeek-Prover-V1.5"
DEEPSEEK_COMMIT = "2c4ba9119eef74d0d611f494261b2c5bae98c69a"
DEEPSEEK_URL = f"https://raw.githubusercontent.com/{DEEPSEEK}/{DEEPSEEK_COMMIT}/datasets/{{file}}"
DEEPSEEK_MATHLIB = "d1d1e4b72c6e009edd97cabe1d661b021fe8eeae"


@dataclass(frozen=True)
class DatasetSource:
    name: str  # what --dataset takes
    file: str  # its file name in the data directory (PROVER_DATA_DIR) and the download cache
    sha256: str
    repository: str  # where the problems come from
    commit: str
    license: str
    lean: str  # the toolchain the statements target
    mathlib: str | None
    lean_env: str  # the environment name that toolchain gets
    url: str | None = None  # a pinned download of exactly this file; None: built from source
    answers: bool = False  # PutnamBench's "produce the answer too" task (see prover/answers.py)

    def revision(self) -> dict[str, Any]:
        """What a report says about the dataset it ran on."""
        data = asdict(self)
        data.pop("url")
        return data


CATALOG: dict[str, DatasetSource] = {d.name: d for d in (
    DatasetSource("minif2f", "minif2f.jsonl",
                  "d6654c88476ff14db19d57dea25bd955a240525fb52171e460f89d98f83d7dd5",
                  DEEPSEEK, DEEPSEEK_COMMIT, "MIT", "v4.9.0-rc1", DEEPSEEK_MATHLIB, "v4_9",
                  DEEPSEEK_URL.format(file="minif2f.jsonl")),
    DatasetSource("proofnet", "proofnet.jsonl",
                  "4a4d4fd69f45d6180830f12a73adb8a7e04915f651f3fa44a2877082fe252132",
                  DEEPSEEK, DEEPSEEK_COMMIT, "MIT", "v4.9.0-rc1", DEEPSEEK_MATHLIB, "v4_9",
                  DEEPSEEK_URL.format(file="proofnet.jsonl")),
    DatasetSource("minif2f_valid_few_shot", "minif2f_valid_few_shot.jsonl",
                  "f66abb94408b27352403b3a0cd9bf4c0b8a87e8d1827af191f613e44383633b1",
                  DEEPSEEK, DEEPSEEK_COMMIT, "MIT", "v4.9.0-rc1", DEEPSEEK_MATHLIB, "v4_9",
                  DEEPSEEK_URL.format(file="minif2f_valid_few_shot.jsonl")),
    DatasetSource("putnambench", "putnambench.jsonl",
                  "bc3ff78e5457a65b6cc48792c24be1a4a2d70d4787772513a2716b4b92b14153",
                  "trishullab/PutnamBench", "3c9b9268ebd132d482938b8e9d242dd71fc1ebc0",
                  "Apache-2.0", "v4.27.0", "a3a10db0e9d66acbebf76c5e6a135066525ac900", "v4_27",
                  answers=True),
    DatasetSource("putnambench-solutions", "putnambench_with_solutions.jsonl",
                  "bbdb5c7eb5cca5266c8bf59fd1b9b2873ba7a934c5df03f69c6835870202b35f",
                  "trishullab/PutnamBench", "3c9b9268ebd132d482938b8e9d242dd71fc1ebc0",
                  "Apache-2.0", "v4.27.0", "a3a10db0e9d66acbebf76c5e6a135066525ac900", "v4_27"),
    DatasetSource("minif2f-recent", "minif2f_lean4_recent.jsonl",
                  "7dcc9ec12f62b72316f232430b5496320cb11d73b8384727bc4a96356cdef826",
                  "yangky11/miniF2F-lean4", "5746b7d6c47855ce1294bed87329618ff7f1bc31", "MIT",
                  "v4.24.0", "f897ebcf72cd16f89ab4577d0c826cd14afaafc7", "v4_24"),
    # ProofNet#'s card: "compatible with all Lean versions between v4.7.0 and v4.16.0-rc2"; no
    # Mathlib is pinned. v4_15 (Kimina-Prover's) is inside that range.
    DatasetSource("proofnet-sharp", "proofnet_sharp.jsonl",
                  "80cf9cb8d77d42d5b156b5214415e505520340c9345d88edd1aedf17ce75db3f",
                  "marcusm117/ProofNet-Verified", "1ecc1243f96b9ab68bfeaa213568bfe8dec33eb3",
                  "MIT", "v4.7.0..v4.16.0-rc2", None, "v4_15"),
    DatasetSource("proofnet-verified", "proofnet_verified.jsonl",
                  "4f2a307401d42172a983e7e04769e6646ba9ca5f71c0656501a18cac38938c7c",
                  "marcusm117/ProofNet-Verified", "1ecc1243f96b9ab68bfeaa213568bfe8dec33eb3",
                  "Apache-2.0", "v4.28.0", "8f9d9cff6bd728b17a24e163c9402775d9e6a365", "v4_28"),
)}
BY_FILE: dict[str, DatasetSource] = {d.file: d for d in CATALOG.values()}


def source_of(name_or_file: str) -> DatasetSource | None:
    """The catalog entry of a dataset name (`putnambench`) or file name
    (`putnambench.jsonl`), or None for a user's own file."""
    return CATALOG.get(name_or_file) or BY_FILE.get(name_or_file)
