"""Pretrained weights shipped with zoo, installed as the package data of `zoo.weights`."""
