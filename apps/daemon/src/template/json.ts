/**
 * Go's encoding/json Marshal for the `json` template function and for data that prints itself as
 * JSON. The encoder is the one blobs and manifests use (@corral/shared/gojson); a template's nil
 * (null or undefined) is `null`, as Go prints a nil interface.
 */
import { goJSON as encodeGoJSON } from "@corral/shared/gojson";

/** JSON text of a value the way Go's json.Marshal writes it; throws on NaN, Infinity, cycles and bare functions. */
export function goJSON(v: unknown): string {
  return encodeGoJSON(v === undefined ? null : v);
}
