"""The scikit-learn estimator contract without importing scikit-learn.

``BaseEstimator`` gives get_params/set_params (so ``sklearn.base.clone``, pipelines and grid
searches work), a repr, and ``__sklearn_tags__`` (which imports scikit-learn lazily: only
scikit-learn itself calls it). Importing scikit-learn costs about a second, so gram does not.
"""
import inspect

import numpy as np


class InvalidParameterError(ValueError, TypeError):
    """A constructor parameter has an invalid type or value (as scikit-learn's)."""


class NotFittedError(ValueError, AttributeError):
    """The estimator is used before ``fit`` (as sklearn.exceptions.NotFittedError)."""


def not_fitted(estimator):
    msg = (f"This {type(estimator).__name__} instance is not fitted yet. Call 'fit' with "
           "appropriate arguments before using this estimator.")
    try:  # scikit-learn's own class when it is there, so `except NotFittedError` works in sklearn code
        import sys
        if "sklearn" in sys.modules:
            from sklearn.exceptions import NotFittedError as SkNotFitted
            return SkNotFitted(msg)
    except ImportError:  # pragma: no cover
        pass
    return NotFittedError(msg)


class BaseEstimator:
    """Parameters are the keyword arguments of ``__init__``, stored unchanged as attributes."""

    @classmethod
    def _get_param_names(cls):
        init = cls.__init__
        if init is object.__init__:
            return []
        params = [p for p in inspect.signature(init).parameters.values()
                  if p.name != "self" and p.kind != p.VAR_KEYWORD]
        for p in params:
            if p.kind == p.VAR_POSITIONAL:
                raise RuntimeError(f"{cls.__name__} should not take *args in __init__")
        return sorted(p.name for p in params)

    def get_params(self, deep=True):
        out = {}
        for key in self._get_param_names():
            value = getattr(self, key)
            if deep and hasattr(value, "get_params") and not isinstance(value, type):
                for k, v in value.get_params().items():
                    out[f"{key}__{k}"] = v
            out[key] = value
        return out

    def set_params(self, **params):
        if not params:
            return self
        valid = self.get_params(deep=True)
        nested = {}
        for key, value in params.items():
            key, delim, sub = key.partition("__")
            if key not in valid:
                raise ValueError(
                    f"Invalid parameter {key!r} for estimator {self}. Valid parameters are: "
                    f"{sorted(self._get_param_names())!r}.")
            if delim:
                nested.setdefault(key, {})[sub] = value
            else:
                setattr(self, key, value)
                valid[key] = value
        for key, sub in nested.items():
            valid[key].set_params(**sub)
        return self

    def __repr__(self):
        defaults = {p.name: p.default for p in inspect.signature(type(self).__init__).parameters.values()}
        changed = []
        for k, v in self.get_params(deep=False).items():
            d = defaults.get(k, inspect.Parameter.empty)
            same = False
            try:
                same = v is d or (type(v) is type(d) and bool(np.all(v == d)))
            except Exception:
                pass
            if not same:
                changed.append(f"{k}={v!r}")
        return f"{type(self).__name__}({', '.join(changed)})"

    def _bad(self, name, expected):
        """scikit-learn's InvalidParameterError for parameter ``name`` (its wording: users match it)."""
        return InvalidParameterError(
            f"The {name!r} parameter of {type(self).__name__} must be {expected}. "
            f"Got {getattr(self, name)!r} instead.")

    def __sklearn_tags__(self):
        from sklearn.utils import Tags, TargetTags
        return Tags(estimator_type=None, target_tags=TargetTags(required=False),
                    transformer_tags=None, regressor_tags=None, classifier_tags=None)

    def __getstate__(self):
        state = dict(self.__dict__)
        state.pop("_kde", None)  # the C handle; rebuilt by __setstate__
        return state
