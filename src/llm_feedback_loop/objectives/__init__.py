"""What the loop optimises: an objective's prompts, its programmatic score and coherence check."""
