"""Text, tokenizer and data loaders (book chapter 2, sections 2.5-2.6).

Everything here works offline: the text and the GPT-2 byte-pair files ship in
the kit's ``data/`` folder (in an installed kit: the package ``reference.kitdata``) and
are checked against ``data/SHA256SUMS``.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.resources
from pathlib import Path

import tiktoken
import torch
from torch.utils.data import DataLoader, Dataset

def find_data_dir() -> Path:
    """Where the shipped data files are: the package data ``reference.kitdata`` of a regular
    install (``pip install .``; setup.py maps data/ there), read with importlib.resources, else
    the kit's ``data/`` folder beside this package (a clone, an editable install).
    """
    installed = importlib.resources.files(__package__ or "reference") / "kitdata"
    if installed.is_dir():
        return Path(str(installed))  # an on-disk install: a real folder, as tiktoken reads paths
    return Path(__file__).resolve().parent.parent / "data"


DATA_DIR = find_data_dir()
VERDICT_PATH = DATA_DIR / "the-verdict.txt"
VERDICT_URL = (
    "https://raw.githubusercontent.com/rasbt/LLMs-from-scratch/main/"
    "ch02/01_main-chapter-code/the-verdict.txt"
)
ENDOFTEXT = "<|endoftext|>"
ENDOFTEXT_ID = 50256


class DataFileError(RuntimeError):
    """A shipped data file is missing or its checksum does not match."""


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@functools.lru_cache(maxsize=1)
def expected_checksums() -> dict[str, str]:
    """Map of ``data/``-relative path -> sha256, read from ``data/SHA256SUMS``."""
    sums = {}
    for line in (DATA_DIR / "SHA256SUMS").read_text().splitlines():
        if line.strip():
            digest, name = line.split(maxsplit=1)
            sums[name.strip()] = digest
    return sums


def verify_data_file(relative: str) -> Path:
    """Return the path of a shipped data file after checking its sha256.

    Raises:
        DataFileError: the file is missing or differs from ``data/SHA256SUMS``.
    """
    path = DATA_DIR / relative
    if not path.is_file():
        raise DataFileError(
            f"missing data file {path}: restore it from the kit (git checkout -- data/)"
        )
    if _sha256(path) != expected_checksums()[relative]:
        raise DataFileError(
            f"data file {path} was changed (sha256 differs from data/SHA256SUMS): "
            "restore it with `git checkout -- data/`"
        )
    return path


def verify_all_data() -> None:
    """Check every file listed in ``data/SHA256SUMS``; raise DataFileError on the first bad one."""
    for relative in expected_checksums():
        verify_data_file(relative)


@functools.lru_cache(maxsize=1)
def get_tokenizer() -> tiktoken.Encoding:
    """The GPT-2 BPE tokenizer, built from ``data/gpt2/`` without network access.

    Equal in behaviour to ``tiktoken.get_encoding("gpt2")``: 50,257 tokens,
    ``<|endoftext|>`` is id 50256 (section 2.5).

    Raises:
        DataFileError: a tokenizer file is missing or changed.
    """
    from tiktoken.load import data_gym_to_mergeable_bpe_ranks
    from tiktoken_ext.openai_public import r50k_pat_str

    sums = expected_checksums()
    vocab_bpe = verify_data_file("gpt2/vocab.bpe")
    encoder_json = verify_data_file("gpt2/encoder.json")
    ranks = data_gym_to_mergeable_bpe_ranks(
        vocab_bpe_file=str(vocab_bpe),
        encoder_json_file=str(encoder_json),
        vocab_bpe_hash=sums["gpt2/vocab.bpe"],
        encoder_json_hash=sums["gpt2/encoder.json"],
    )
    return tiktoken.Encoding(
        name="gpt2",
        explicit_n_vocab=50257,
        pat_str=r50k_pat_str,
        mergeable_ranks=ranks,
        special_tokens={ENDOFTEXT: ENDOFTEXT_ID},
    )


def load_text(path: str | Path | None = None, url: str | None = None) -> str:
    """Read a UTF-8 text; by default the shipped *The Verdict* (20,479 characters).

    With no ``path``, the shipped copy is read and its checksum verified. With a
    ``path`` that does not exist and a ``url``, the text is downloaded with
    requests (30 s timeout), saved to ``path`` and returned.

    Raises:
        DataFileError: the shipped text is missing or changed.
        FileNotFoundError: ``path`` does not exist and no ``url`` was given, or
            the download failed (the message names the file to put in place).
    """
    if path is None:
        return verify_data_file("the-verdict.txt").read_text(encoding="utf-8")
    path = Path(path)
    if not path.exists():
        if url is None:
            raise FileNotFoundError(f"{path} does not exist: put the text file there")
        _download(url, path)
    return path.read_text(encoding="utf-8")


def _download(url: str, path: Path) -> None:
    import requests

    try:
        response = requests.get(url, timeout=30)
        response.raise_for_status()
    except requests.RequestException as exc:
        raise FileNotFoundError(
            f"could not download {url} ({exc.__class__.__name__}); "
            f"offline, put the file at {path} by hand"
        ) from None
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(response.content)


class GPTDatasetV1(Dataset):
    """Input/target chunks of ``max_length`` tokens, taken every ``stride`` tokens (section 2.6).

    Each item is a pair of LongTensors of shape ``(max_length,)``; the target is
    the input shifted one token to the right.
    """

    def __init__(self, txt, tokenizer, max_length, stride):
        self.input_ids = []
        self.target_ids = []

        token_ids = tokenizer.encode(txt, allowed_special={ENDOFTEXT})
        for i in range(0, len(token_ids) - max_length, stride):
            input_chunk = token_ids[i : i + max_length]
            target_chunk = token_ids[i + 1 : i + max_length + 1]
            self.input_ids.append(torch.tensor(input_chunk))
            self.target_ids.append(torch.tensor(target_chunk))

    def __len__(self):
        return len(self.input_ids)

    def __getitem__(self, idx):
        return self.input_ids[idx], self.target_ids[idx]


def create_dataloader_v1(
    txt,
    batch_size=4,
    max_length=256,
    stride=128,
    shuffle=True,
    drop_last=True,
    num_workers=0,
):
    """A DataLoader of ``(inputs, targets)`` batches, each ``(batch_size, max_length)`` int64 (section 2.6).

    Raises:
        ValueError: ``max_length`` or ``stride`` is not positive, or the text is
            too short for one chunk of ``max_length + 1`` tokens.
    """
    if max_length < 1 or stride < 1 or batch_size < 1:
        raise ValueError(
            f"batch_size, max_length and stride must be positive "
            f"(got {batch_size}, {max_length}, {stride})"
        )
    tokenizer = get_tokenizer()
    dataset = GPTDatasetV1(txt, tokenizer, max_length, stride)
    if len(dataset) == 0:
        raise ValueError(
            f"the text has too few tokens for one chunk of max_length={max_length}: "
            "use a smaller context length or a longer text"
        )
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        drop_last=drop_last,
        num_workers=num_workers,
    )
