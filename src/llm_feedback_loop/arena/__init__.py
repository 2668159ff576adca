"""Arena mode: two model versions answer the same prompt anonymously; votes rank the versions."""
