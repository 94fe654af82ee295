// The cloud request signers of shared/registry-types/signing/ (our own code on node:crypto, no
// provider SDK in any bundle) against the providers' published examples: Tencent Cloud's
// TC3-HMAC-SHA256 worked example, Alibaba Cloud's ACS3-HMAC-SHA256 (V3) worked example,
// Volcengine's (BytePlus') canonical request example, and Huawei SWR's documented login-key
// command, run with openssl.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { acs3Headers } from '../shared/registry-types/signing/acs3.js';
import { canonicalQuery, rfc3986, sha256Hex } from '../shared/registry-types/signing/encoding.js';
import { swrLogin } from '../shared/registry-types/signing/swr-login.js';
import { tc3Headers } from '../shared/registry-types/signing/tc3.js';
import { volcHeaders } from '../shared/registry-types/signing/volcengine.js';

describe('cloud API signers against published vectors', () => {
  it("Tencent Cloud TC3-HMAC-SHA256: the API 3.0 documentation's DescribeInstances example", () => {
    // cloud.tencent.com/document/api/213/30654 ("Signature v3"): the keys, timestamp and payload
    // of the example, and its published signature.
    const payload = String.raw`{"Limit": 1, "Filters": [{"Values": ["\u672a\u547d\u540d"], "Name": "instance-name"}]}`;
    assert.equal(sha256Hex(payload), '35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064');
    const h = tc3Headers({
      secretId: 'AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE',
      secretKey: 'Gu5t9xGARNpq86cd98joQYCN3EXAMPLE',
      service: 'cvm',
      host: 'cvm.tencentcloudapi.com',
      action: 'DescribeInstances',
      version: '2017-03-12',
      region: 'ap-guangzhou',
      timestamp: 1551113065,
      payload,
    });
    assert.equal(
      h.authorization,
      'TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE/2019-02-25/cvm/tc3_request, SignedHeaders=content-type;host, Signature=72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168',
    );
    assert.equal(h['content-type'], 'application/json; charset=utf-8');
    assert.deepEqual([h['x-tc-action'], h['x-tc-version'], h['x-tc-timestamp'], h['x-tc-region']], ['DescribeInstances', '2017-03-12', '1551113065', 'ap-guangzhou']);
  });

  it("Alibaba Cloud ACS3-HMAC-SHA256: the V3 signature documentation's RunInstances example", () => {
    // alibabacloud.com/help/en/sdk/product-overview/v3-request-structure-and-signature: fixed
    // key, date, nonce and query of the example, and its published signature.
    const h = acs3Headers({
      accessKeyId: 'YourAccessKeyId',
      accessKeySecret: 'YourAccessKeySecret',
      method: 'POST',
      url: new URL('https://ecs.cn-shanghai.aliyuncs.com/?ImageId=win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd&RegionId=cn-shanghai'),
      action: 'RunInstances',
      version: '2014-05-26',
      date: '2023-10-26T10:22:32Z',
      nonce: '3156853299f313e23d1673dc12e1703d',
      body: '',
    });
    assert.equal(
      h.authorization,
      'ACS3-HMAC-SHA256 Credential=YourAccessKeyId,SignedHeaders=host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,Signature=06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0',
    );
    assert.equal(h['x-acs-content-sha256'], 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    assert.equal(h.host, undefined, 'the Host header is the connection’s, not sent by hand');
  });

  it("Volcengine HMAC-SHA256: the published ListUsers example's canonical request, and the key chain", () => {
    // docs.byteplus.com/byteplus-platform/reference/example (BytePlus is Volcengine's
    // international edition; same scheme): the example's canonical request hashes to the
    // published 4809ff4a...; its secret is not published, so the signature is checked against
    // the scheme written out independently here.
    const url = new URL('https://iam.byteplusapi.com/?Action=ListUsers&Version=2018-01-01&Limit=10&Offset=0');
    assert.equal(canonicalQuery(url.searchParams), 'Action=ListUsers&Limit=10&Offset=0&Version=2018-01-01');
    const canonical = [
      'GET',
      '/',
      'Action=ListUsers&Limit=10&Offset=0&Version=2018-01-01',
      'content-type:application/x-www-form-urlencoded; charset=utf-8\nhost:iam.byteplusapi.com\nx-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\nx-date:20201230T081805Z\n',
      'content-type;host;x-content-sha256;x-date',
      'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    ].join('\n');
    assert.equal(sha256Hex(canonical), '4809ff4a3260bb6714f750191275cfcf0c16466951fcfd99187e69644b6ae020');
    const h = volcHeaders({
      accessKeyId: 'AKEXAMPLE',
      secretAccessKey: 'SKEXAMPLE',
      service: 'iam',
      region: 'ap-singapore-1',
      method: 'GET',
      url,
      date: '20201230T081805Z',
      body: '',
      contentType: 'application/x-www-form-urlencoded; charset=utf-8',
    });
    // The same computation with openssl: the key chain HMAC(HMAC(HMAC(HMAC(SK, date), region), service), "request").
    const hmac = (keyHex: string, data: string) => execFileSync('openssl', ['dgst', '-sha256', '-mac', 'HMAC', '-macopt', `hexkey:${keyHex}`, '-r'], { input: data }).toString().split(' ')[0]!;
    let key = Buffer.from('SKEXAMPLE').toString('hex');
    for (const part of ['20201230', 'ap-singapore-1', 'iam', 'request']) key = hmac(key, part);
    const expected = hmac(key, `HMAC-SHA256\n20201230T081805Z\n20201230/ap-singapore-1/iam/request\n${sha256Hex(canonical)}`);
    assert.equal(h.authorization, `HMAC-SHA256 Credential=AKEXAMPLE/20201230/ap-singapore-1/iam/request, SignedHeaders=content-type;host;x-content-sha256;x-date, Signature=${expected}`);
    assert.equal(h['x-date'], '20201230T081805Z');
  });

  it("Huawei SWR: the login key is SWR's documented openssl command over the AK with the SK", () => {
    const login = swrLogin('cn-north-4', 'AKEXAMPLE123', 'SKEXAMPLE456');
    const documented = execFileSync('sh', ['-c', 'printf "$AK" | openssl dgst -binary -sha256 -hmac "$SK" | od -An -vtx1 | sed "s/[ \\n]//g" | tr -d "\\n"'], {
      env: { ...process.env, AK: 'AKEXAMPLE123', SK: 'SKEXAMPLE456' },
    }).toString();
    assert.deepEqual(login, { username: 'cn-north-4@AKEXAMPLE123', password: documented });
  });

  it('RFC 3986 encoding: what encodeURIComponent leaves alone is escaped', () => {
    assert.equal(rfc3986("a b!'()*~-_.é/"), 'a%20b%21%27%28%29%2A~-_.%C3%A9%2F');
  });
});
