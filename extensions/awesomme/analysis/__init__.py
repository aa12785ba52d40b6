"""Analysis stages on images and masks: radiomics, classification, agreement, interpolation."""
