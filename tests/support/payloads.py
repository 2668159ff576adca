"""The original project's payloads, as its README and schema show them."""

from __future__ import annotations

from typing import Any

# The sample in the original README ("the second answer is more complete").
README_COMPARISON: dict[str, Any] = {
    "prompt": "Apa itu Kubernetes?",
    "responses": [
        {"id": "1", "text": "Kubernetes adalah sistem orkestrasi kontainer."},
        {"id": "2", "text": "Kubernetes digunakan untuk mengelola container dan deployment."},
    ],
    "ranking": [1, 0],
    "comment": "Jawaban kedua lebih lengkap.",
}

# A thumbs rating as the original `POST /feedback` took it.
README_RATING: dict[str, Any] = {
    "prompt": "Apa itu Kubernetes?",
    "response": "Kubernetes adalah sistem orkestrasi kontainer.",
    "rating": "up",
    "model": "TinyLLaMA/TinyLLaMA-1.1B-Chat-v1.0",
}

# A comparison with only a best pick (the schema's `bestIndex`).
BEST_PICK_COMPARISON: dict[str, Any] = {
    "prompt": "Jelaskan Docker",
    "responses": [
        {"id": "a", "text": "Docker menjalankan kontainer."},
        {"id": "b", "text": "Docker adalah platform kontainerisasi untuk membangun dan menjalankan aplikasi."},
        {"id": "c", "text": "Tidak tahu."},
    ],
    "bestIndex": 1,
}

UNICODE_TEXTS = [
    "Apa itu Kubernetes? Jawablah dengan singkat 🙂",
    "مرحبا بالعالم — كيف حالك؟",  # Arabic, right to left
    "שלום עולם",  # Hebrew, right to left
    "emoji 👩🏽‍💻 with ZWJ, e\u0301 combining, 日本語, \u202eRTL override",
    'quotes " \\ backslash / slash \n newline \t tab',
]
