"""Autograder for the chapter-5 exercises: ``python -m grader --help``."""

# The exercises in the order the chapter introduces them; each is a function name
# from the book, a module in exercises/ and solutions/, and a folder grader/checks/<name>/
# (its checks, scenarios and known mistakes).
EXERCISES = (
    "text_to_token_ids",
    "token_ids_to_text",
    "manual_cross_entropy",
    "calc_loss_batch",
    "calc_loss_loader",
    "evaluate_model",
    "train_model_simple",
    "plot_losses",
    "softmax_with_temperature",
    "generate",
    "save_checkpoint",
    "load_checkpoint",
    "assign",
    "load_weights_into_gpt",
)
