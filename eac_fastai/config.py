"Recipe sections: pydantic models that refuse unknown keys; each method's and augmentation's sits beside its code."
from pydantic import BaseModel, ConfigDict

__all__ = ['Section']

class Section(BaseModel):
    """A section of a recipe: typed and validated fields with defaults and descriptions; an unknown key, and a NaN or
    infinite number, is an error."""
    model_config = ConfigDict(extra='forbid', allow_inf_nan=False)
