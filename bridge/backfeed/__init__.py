"""The fediverse answers: sanitised, moderated, threaded comments and linkbacks."""
