"""Reference answers: extraction and normalisation of final answers (GSM8K numbers, MATH
``\\boxed{}`` expressions), used both when reading training data and when scoring."""
