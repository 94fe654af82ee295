import { hmacSha256 } from './encoding.js';

/**
 * Huawei SWR's long-term login credential from an access key pair, as SWR documents it: user
 * `<region>@<AK>`, password the hex HMAC-SHA256 of the AK under the SK
 * (`printf "$AK" | openssl dgst -binary -sha256 -hmac "$SK" | od -An -vtx1 | sed 's/[ \n]//g'`).
 * Harbor's huawei-SWR adapter takes that login credential as it is; this derives it when the
 * config gives the access key pair instead.
 */
export function swrLogin(region: string, accessKey: string, secretKey: string): { username: string; password: string } {
  return { username: `${region}@${accessKey}`, password: hmacSha256(secretKey, accessKey).toString('hex') };
}
