"""Metrics of generated texts (corrective instructions), offline: BLEU-4, ROUGE-L, METEOR and R-precision.

The original computes its NLP metrics with Hugging Face `evaluate`, which downloads metric scripts at run time
(original_system.md §5.3, §10 quirk 18); here the libraries behind those scripts are called directly
(environment.md §10). Every score is on the paper's 0-100 scale (Table 2 reports BLEU-4, ROUGE-L, METEOR
x 100 and R@k in %). Each prediction has one or more references (all the annotated texts of its pair):

- `bleu4`: corpus-level BLEU with up to 4-grams (sacrebleu, 13a tokenizer, multi-reference, no smoothing as
  HF `evaluate`'s bleu). Lowercased by default, because the decoder's tokenizer is uncased while references
  keep their capitals (the original compared them case-sensitively: pass `lowercase=False` for that).
  sacrebleu's brevity penalty uses the closest reference length, HF's bleu the shortest.
- `rouge_l`: ROUGE-L F-measure (rouge-score, no stemming as HF's default), per prediction the best over its
  references (`RougeScorer.score_multi`, what HF's rouge does with several references), averaged (HF reports
  the median of bootstrap means, which differs from the mean in the last digits).
- `meteor`: METEOR (nltk, alpha 0.9, beta 3, gamma 0.5), per prediction the best over its references (nltk's
  `meteor_score` with several references), averaged. Tokenised like nltk's `word_tokenize` without its punkt
  data (sentences split after . ! ? followed by a space, then nltk's Treebank-style word tokenizer).
  Synonym matching needs WordNet 3.0, read from disk without network by `load_wordnet`.
- `r_precision`: R@k of retrieving each generated text's ground-truth pair among a random pool of pairs,
  from embeddings the caller computed with the evaluation model (PairText).

Importing this module imports none of sacrebleu, rouge-score and nltk (the `eval` extra): each metric does.
"""

from __future__ import annotations

import functools
import io
import os
import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from poseembroider import config
from poseembroider.evaluation.retrieval import ground_truth_ranks

__all__ = [
    "WORDNET_SYSTEM_DIR",
    "WordNetNotFoundError",
    "bleu4",
    "find_wordnet_dir",
    "load_wordnet",
    "meteor",
    "meteor_scores",
    "r_precision",
    "r_precision_mean_ranks",
    "rouge_l",
    "rouge_l_scores",
    "text_generation_metrics",
    "tokenize_for_meteor",
]

WORDNET_SYSTEM_DIR = Path("/usr/share/wordnet")
"""Where Debian / Ubuntu's `wordnet-base` and `wordnet-sense-index` packages put the WordNet 3.0 database
(`make install` installs them through tools/install_system_packages.sh)."""
WORDNET_REQUIRED_FILES = ("data.noun", "index.noun", "data.verb", "index.verb", "noun.exc", "verb.exc")
WORDNET_INSTALL_HINT = (
    "run `make install` (its tools/install_system_packages.sh installs the Debian/Ubuntu packages wordnet-base "
    "and wordnet-sense-index into /usr/share/wordnet), or `apt-get install wordnet-base wordnet-sense-index` "
    "as root, or point POSEEMBROIDER_WORDNET_DIR at a folder holding the WordNet 3.0 database files "
    "(data.noun, index.noun, ...)"
)
# WordNet 3.0's lexicographer files, in file-number order (the `lexnames` file, lexnames(5WN)); syntactic
# category 1 noun, 2 verb, 3 adjective, 4 adverb. The Debian packages do not ship the file; nltk reads it.
WORDNET_LEXNAMES: tuple[tuple[str, int], ...] = (
    ("adj.all", 3), ("adj.pert", 3), ("adv.all", 4), ("noun.Tops", 1), ("noun.act", 1), ("noun.animal", 1),
    ("noun.artifact", 1), ("noun.attribute", 1), ("noun.body", 1), ("noun.cognition", 1),
    ("noun.communication", 1), ("noun.event", 1), ("noun.feeling", 1), ("noun.food", 1), ("noun.group", 1),
    ("noun.location", 1), ("noun.motive", 1), ("noun.object", 1), ("noun.person", 1), ("noun.phenomenon", 1),
    ("noun.plant", 1), ("noun.possession", 1), ("noun.process", 1), ("noun.quantity", 1), ("noun.relation", 1),
    ("noun.shape", 1), ("noun.state", 1), ("noun.substance", 1), ("noun.time", 1), ("verb.body", 2),
    ("verb.change", 2), ("verb.cognition", 2), ("verb.communication", 2), ("verb.competition", 2),
    ("verb.consumption", 2), ("verb.contact", 2), ("verb.creation", 2), ("verb.emotion", 2), ("verb.motion", 2),
    ("verb.perception", 2), ("verb.possession", 2), ("verb.social", 2), ("verb.stative", 2), ("verb.weather", 2),
    ("adj.ppl", 3),
)  # fmt: skip
METEOR_PARAMETERS = {"alpha": 0.9, "beta": 3.0, "gamma": 0.5}
"""nltk's (and HF evaluate's) METEOR defaults."""
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


class WordNetNotFoundError(FileNotFoundError):
    """No WordNet 3.0 database on disk: METEOR cannot run. The message says what to install."""


# ---------------------------------------------------------------------------------------------- inputs


def _check_texts(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> list[list[str]]:
    """Validate (N,) predictions and (N,) lists of references; return the references as lists."""
    if isinstance(predictions, str) or not all(isinstance(p, str) for p in predictions):
        raise TypeError("predictions: expected a sequence of strings (one generated text per sample)")
    if len(predictions) == 0:
        raise ValueError("predictions: no generated text to score")
    if isinstance(references, str) or len(references) != len(predictions):
        raise ValueError(
            f"references: expected one list of reference texts per prediction ({len(predictions)}), "
            f"got {'a string' if isinstance(references, str) else len(references)}"
        )
    refs = []
    for i, group in enumerate(references):
        if isinstance(group, str):
            raise TypeError(f"references[{i}]: expected a list of reference strings, got a string (wrap it in [...])")
        group = list(group)
        if not group or not all(isinstance(r, str) for r in group):
            raise ValueError(f"references[{i}]: expected at least one reference string, got {group!r}")
        refs.append(group)
    return refs


# ---------------------------------------------------------------------------------------------- BLEU, ROUGE-L


def bleu4(predictions: Sequence[str], references: Sequence[Sequence[str]], *, lowercase: bool = True) -> float:
    """Corpus-level BLEU-4 (0-100) of `predictions` (N,) against `references` (N lists, any number each)."""
    from sacrebleu.metrics import BLEU

    refs = _check_texts(predictions, references)
    width = max(len(group) for group in refs)
    # sacrebleu takes reference *streams*: stream j holds the j-th reference of every sample, None where a
    # sample has fewer references (None entries are dropped, so each sample keeps exactly its own references)
    streams = [[group[j] if j < len(group) else None for group in refs] for j in range(width)]
    metric = BLEU(max_ngram_order=4, smooth_method="none", tokenize="13a", lowercase=lowercase)
    return float(metric.corpus_score(list(predictions), streams).score)


def rouge_l_scores(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> list[float]:
    """Per prediction, the best ROUGE-L F-measure (0-100) over its references."""
    from rouge_score import rouge_scorer

    refs = _check_texts(predictions, references)
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    pairs = zip(predictions, refs, strict=True)
    return [100.0 * scorer.score_multi(group, pred)["rougeL"].fmeasure for pred, group in pairs]


def rouge_l(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> float:
    """Mean over predictions of the best ROUGE-L F-measure over each one's references (0-100)."""
    return float(np.mean(rouge_l_scores(predictions, references)))


# ---------------------------------------------------------------------------------------------- METEOR


def find_wordnet_dir() -> Any:
    """Where the WordNet 3.0 database is: `config.WORDNET_DIR` when set, else nltk's data path
    (`corpora/wordnet`, as nltk's downloader lays it out; NLTK_DATA is honoured), else the distribution's
    /usr/share/wordnet. Returns a path (or nltk path pointer); raises WordNetNotFoundError saying what to
    install."""
    configured = getattr(config, "WORDNET_DIR", None)
    if configured is not None:
        folder = Path(configured)
        missing = [f for f in WORDNET_REQUIRED_FILES if not (folder / f).is_file()]
        if missing:
            raise WordNetNotFoundError(
                f"config.WORDNET_DIR (POSEEMBROIDER_WORDNET_DIR) = {folder} is not a WordNet 3.0 database: "
                f"missing {missing}; {WORDNET_INSTALL_HINT}"
            )
        return folder
    import nltk.data

    try:
        return nltk.data.find("corpora/wordnet")
    except LookupError:
        pass
    try:
        return nltk.data.find("corpora/wordnet.zip/wordnet/")
    except LookupError:
        pass
    if all((WORDNET_SYSTEM_DIR / f).is_file() for f in WORDNET_REQUIRED_FILES):
        return WORDNET_SYSTEM_DIR
    raise WordNetNotFoundError(
        f"WordNet 3.0 not found (METEOR needs it): not in POSEEMBROIDER_WORDNET_DIR (unset), nltk's data path "
        f"{list(nltk.data.path)} nor {WORDNET_SYSTEM_DIR}; {WORDNET_INSTALL_HINT}"
    )


def _lexnames_text() -> str:
    return "".join(f"{i:02d}\t{name}\t{category}\n" for i, (name, category) in enumerate(WORDNET_LEXNAMES))


@functools.cache
def _reader_class() -> type:
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    class _WordNetReader(WordNetCorpusReader):
        """nltk's WordNet reader over a database folder outside nltk's download layout: it serves the
        standard `lexnames` table when the folder lacks it (Debian's packages ship the database without it)
        and does not look for nltk's own `corpora/wordnet` download (`map_wn`)."""

        def __init__(self, root: Any, has_lexnames: bool):
            self._has_lexnames = has_lexnames  # read by `open` during the parent's __init__
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="The multilingual functions are not available")
                super().__init__(root, None)  # no Open Multilingual Wordnet: English only, all METEOR uses

        def open(self, file: str) -> Any:
            if file == "lexnames" and not self._has_lexnames:
                return io.StringIO(_lexnames_text())
            return super().open(file)

        def map_wn(self, version: str = "wordnet") -> None:
            """nltk maps the synsets of its own `corpora/wordnet` download onto the loaded database, for the
            multilingual (OMW) functions, loading that download by name; this database is WordNet 3.0, the
            version OMW is indexed by, and nothing multilingual is used: no mapping."""
            return None

    return _WordNetReader


@functools.cache
def _load_wordnet(root: str) -> Any:
    """The reader of the database folder `root` (cached: loading takes about a second)."""
    from nltk.data import FileSystemPathPointer, ZipFilePathPointer

    if root.startswith("zip:"):  # nltk's zipped download: its own layout, lexnames included
        zip_file, entry = root[4:].split("::", 1)
        return _reader_class()(ZipFilePathPointer(zip_file, entry), has_lexnames=True)
    _authorize_for_nltk(Path(root))
    return _reader_class()(FileSystemPathPointer(root), has_lexnames=(Path(root) / "lexnames").is_file())


def _authorize_for_nltk(folder: Path) -> None:
    """nltk (3.9.3+) reads corpora only under the folders of its data path (`nltk.data.path`, NLTK_DATA):
    add the WordNet folder found elsewhere (/usr/share/wordnet, POSEEMBROIDER_WORDNET_DIR), as nltk's own
    error message says to. Only this folder is added, once."""
    import nltk.data

    if str(folder) not in [str(p) for p in nltk.data.path]:
        nltk.data.path.append(str(folder))


def load_wordnet(folder: str | os.PathLike | None = None) -> Any:
    """nltk's WordNet reader over the WordNet 3.0 database in `folder` (default: `find_wordnet_dir()`),
    loaded once per folder. Works on nltk's own layout and on Debian's /usr/share/wordnet (no `lexnames`
    file: the reader serves the standard table)."""
    found = find_wordnet_dir() if folder is None else Path(folder)
    if not isinstance(found, Path):
        from nltk.data import ZipFilePathPointer

        if isinstance(found, ZipFilePathPointer):
            return _load_wordnet(f"zip:{found.zipfile.filename}::{found.entry}")
        found = Path(str(found))
    missing = [f for f in WORDNET_REQUIRED_FILES if not (found / f).is_file()]
    if missing:
        raise WordNetNotFoundError(f"{found} is not a WordNet 3.0 database: missing {missing}; {WORDNET_INSTALL_HINT}")
    return _load_wordnet(str(found.resolve()))


def tokenize_for_meteor(text: str) -> list[str]:
    """nltk's `word_tokenize` without punkt data: sentences split after . ! ? followed by whitespace, each
    tokenised with nltk's Treebank-style `NLTKWordTokenizer` (what `word_tokenize` applies per sentence)."""
    return list(_meteor_tokens(text))


@functools.lru_cache(maxsize=1 << 16)
def _meteor_tokens(text: str) -> tuple[str, ...]:
    """`tokenize_for_meteor`, remembered: an evaluation scores many predictions against the same references."""
    from nltk.tokenize import NLTKWordTokenizer

    tokenizer = NLTKWordTokenizer()
    return tuple(
        token for sentence in _SENTENCE_END.split(text.strip()) if sentence for token in tokenizer.tokenize(sentence)
    )


class _RememberingStemmer:
    """nltk's Porter stemmer (METEOR's default, same mode) that stems each word once: METEOR stems every word of
    every (prediction, reference) pair, the same few thousand words over and over (2 M calls, the largest part
    of its time, in one evaluation of 954 pairs x 9 decodings and controls)."""

    def __init__(self) -> None:
        from nltk.stem.porter import PorterStemmer

        self.stem = functools.lru_cache(maxsize=None)(PorterStemmer().stem)


class _RememberingWordNet:
    """A WordNet reader as METEOR's synonym stage reads it (`synsets(word)`), each word looked up once: nltk
    looks up the synsets of every prediction word against every reference. Anything else goes to the reader."""

    def __init__(self, reader: Any) -> None:
        self._reader = reader
        self._synsets: dict[str, list[Any]] = {}

    def synsets(self, word: str) -> list[Any]:
        found = self._synsets.get(word)
        if found is None:
            found = self._synsets[word] = self._reader.synsets(word)
        return found

    def __getattr__(self, name: str) -> Any:
        return getattr(self._reader, name)


@functools.cache
def _remembering_stemmer() -> _RememberingStemmer:
    return _RememberingStemmer()


@functools.cache
def _remembering_wordnet(reader: Any) -> _RememberingWordNet:
    return _RememberingWordNet(reader)


def meteor_scores(
    predictions: Sequence[str], references: Sequence[Sequence[str]], *, wordnet: Any | None = None
) -> list[float]:
    """Per prediction, the best METEOR (0-100) over its references. `wordnet`: an nltk WordNet reader
    (default `load_wordnet()`, which raises WordNetNotFoundError saying what to install)."""
    from nltk.translate.meteor_score import meteor_score

    refs = _check_texts(predictions, references)
    wordnet = _remembering_wordnet(load_wordnet() if wordnet is None else wordnet)
    stemmer = _remembering_stemmer()
    scores = []
    for pred, group in zip(predictions, refs, strict=True):
        hypothesis = tokenize_for_meteor(pred)
        tokenized = [tokenize_for_meteor(r) for r in group]
        scores.append(
            100.0 * meteor_score(tokenized, hypothesis, stemmer=stemmer, wordnet=wordnet, **METEOR_PARAMETERS)
        )
    return scores


def meteor(predictions: Sequence[str], references: Sequence[Sequence[str]], *, wordnet: Any | None = None) -> float:
    """Mean over predictions of the best METEOR over each one's references (0-100)."""
    return float(np.mean(meteor_scores(predictions, references, wordnet=wordnet)))


def text_generation_metrics(
    predictions: Sequence[str],
    references: Sequence[Sequence[str]],
    *,
    lowercase_bleu: bool = True,
    wordnet: Any | None = None,
) -> dict[str, float]:
    """{`bleu4`, `rouge_l`, `meteor`}: the paper's three NLP metrics of Table 2, each 0-100."""
    return {
        "bleu4": bleu4(predictions, references, lowercase=lowercase_bleu),
        "rouge_l": rouge_l(predictions, references),
        "meteor": meteor(predictions, references, wordnet=wordnet),
    }


# ---------------------------------------------------------------------------------------------- R-precision


def r_precision_mean_ranks(
    text_embeddings: torch.Tensor,
    pair_embeddings: torch.Tensor,
    *,
    pool_size: int = config.sample_size_r_precision,
    n_repetitions: int = config.r_precision_n_repetitions,
    seed: int = 0,
) -> torch.Tensor:
    """(N,) float64: for each generated text, the rank of its ground-truth pair (0 = first) in a random pool of
    `min(pool_size, N)` pairs that contains it, averaged over `n_repetitions` pools (original_system.md §5.3).

    text_embeddings: (N, D) evaluation-model embeddings of the N generated texts; pair_embeddings: (N, D)
    embeddings of the N ground-truth pairs (row i is text i's pair). Scores are dot products (pass
    L2-normalised embeddings for cosine); ties count for the ground truth.

    A pool is the ground truth plus `pool - 1` other pairs drawn without replacement; the ground truth's rank
    in it is the number of drawn pairs that score above it. If `K` of the `N - 1` other pairs score above it
    over the whole split (its full rank, computed chunked by `ground_truth_ranks`), that number follows the
    hypergeometric law (K successes among N - 1, pool - 1 draws); drawing it directly (numpy, seeded) has the
    same law as drawing pools, without N x pool index arrays.
    """
    if text_embeddings.dim() != 2 or pair_embeddings.dim() != 2:
        raise ValueError(
            f"text_embeddings {tuple(text_embeddings.shape)} and pair_embeddings {tuple(pair_embeddings.shape)}: "
            "expected (N, D) each"
        )
    if text_embeddings.shape != pair_embeddings.shape:
        raise ValueError(
            f"text_embeddings {tuple(text_embeddings.shape)} and pair_embeddings {tuple(pair_embeddings.shape)}: "
            "expected the same (N, D), row i of both being sample i"
        )
    n = text_embeddings.shape[0]
    if n == 0:
        raise ValueError("text_embeddings: no generated text")
    if pool_size < 1 or n_repetitions < 1:
        raise ValueError(f"pool_size ({pool_size}) and n_repetitions ({n_repetitions}) must be at least 1")
    others = min(pool_size, n) - 1
    above = ground_truth_ranks(text_embeddings.float(), pair_embeddings.float()).numpy()  # (N,) K per query
    generator = np.random.Generator(np.random.PCG64(seed))
    good = np.broadcast_to(above[:, None], (n, n_repetitions))
    bad = (n - 1) - good
    drawn = generator.hypergeometric(good, bad, others) if others > 0 else np.zeros((n, n_repetitions), np.int64)
    return torch.from_numpy(drawn.astype(np.float64).mean(1))


def r_precision(
    text_embeddings: torch.Tensor,
    pair_embeddings: torch.Tensor,
    *,
    ks: Sequence[int] = config.k_topk_r_precision,
    pool_size: int = config.sample_size_r_precision,
    n_repetitions: int = config.r_precision_n_repetitions,
    seed: int = 0,
) -> dict[str, float]:
    """{`R@k`: % of generated texts whose ground-truth pair's averaged pool rank is below k} for k in `ks`
    (default 1, 2, 3; pool 200 or the split size, 10 repetitions: the original's settings). See
    `r_precision_mean_ranks` for the inputs. Identical text and pair embeddings give 100; unrelated ones
    about 100 * k / pool."""
    mean_ranks = r_precision_mean_ranks(
        text_embeddings, pair_embeddings, pool_size=pool_size, n_repetitions=n_repetitions, seed=seed
    )
    return {f"R@{k}": float((mean_ranks < k).double().mean() * 100.0) for k in ks}
