"""Tensor metrics that train and infer share: the confidence decoder, hierarchical metrics, binomial bounds."""
