// Declarative tagging: the properties of a track call from an element's data-cohortly-prop-* attributes.
// The name is the rest of the attribute's name. A plain decimal value ("12", "-3.5"; not "007", "1e3" or "12.")
// becomes a number, unless the name ends in "id" or "sku": identifiers stay strings.
export const tagProperties = (el, properties = {}) => {
  for (const { name, value } of el.attributes)
    if (!name.indexOf("data-cohortly-prop-"))
      properties[name.slice(19)] =
        /^-?(0|[1-9]\d*)(\.\d+)?$/.test(value) && !/(id|sku)$/.test(name) ? +value : value;
  return properties;
};
