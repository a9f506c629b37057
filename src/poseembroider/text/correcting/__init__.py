"""Rule-based instruction writer for pose pairs (A -> B): paircodes, facts about B, imperative texts."""
