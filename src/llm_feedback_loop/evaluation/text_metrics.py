"""Answers against reference answers: corpus BLEU and chrF (sacrebleu) and mean ROUGE-L F1 (rouge-score),
all on a 0–100 scale, plus the mean answer length in words."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TextScores:
    bleu: float
    chrf: float
    rouge_l: float
    mean_words: float
    count: int


def text_scores(answers: list[str], references: list[str]) -> TextScores:
    """Scores of `answers` against `references` (one reference per answer, same order)."""
    import sacrebleu
    from rouge_score import rouge_scorer

    if len(answers) != len(references):
        raise ValueError(f"{len(answers)} answers for {len(references)} references")
    if not answers:
        raise ValueError("no answers to score")
    bleu = sacrebleu.corpus_bleu(answers, [references]).score
    chrf = sacrebleu.corpus_chrf(answers, [references]).score
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    rouge_l = sum(scorer.score(ref, ans)["rougeL"].fmeasure for ans, ref in zip(answers, references, strict=True))
    words = sum(len(answer.split()) for answer in answers)
    return TextScores(
        bleu=round(bleu, 4),
        chrf=round(chrf, 4),
        rouge_l=round(100 * rouge_l / len(answers), 4),
        mean_words=round(words / len(answers), 4),
        count=len(answers),
    )
