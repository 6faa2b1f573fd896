"""Model families. Importing this package registers every model's spec."""

from zoo.core.models import cifar, cnn, fcn, reference  # noqa: F401
