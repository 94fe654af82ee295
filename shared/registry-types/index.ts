import { aliAcr, aliRegistryHost } from './ali-acr.js';
import { azureAcr } from './azure-acr.js';
import { dockerHub } from './docker-hub.js';
import { dtr } from './dtr.js';
import { githubGhcr } from './github-ghcr.js';
import { gitlab } from './gitlab.js';
import { googleKeys } from './google.js';
import { huaweiSwr } from './huawei-swr.js';
import { jfrogArtifactory } from './jfrog-artifactory.js';
import { quay } from './quay.js';
import type { RegistryTypeModule } from './registry-type.js';
import { tencentTcr } from './tencent-tcr.js';
import { volcengineCr } from './volcengine-cr.js';

/**
 * Each registry type's module, by Harbor's type name. Types not here (`docker-registry`) are the
 * distribution spec as it is; `harbor` and `aws-ecr` are wired by rules/ (Harbor's API, ECR's
 * platform ports).
 */
const MODULES: Readonly<Record<string, RegistryTypeModule>> = {
  'azure-acr': azureAcr,
  'ali-acr': aliAcr,
  'huawei-SWR': huaweiSwr,
  'tencent-tcr': tencentTcr,
  'jfrog-artifactory': jfrogArtifactory,
  quay,
  gitlab,
  dtr,
  'volcengine-cr': volcengineCr,
  'docker-hub': dockerHub,
  'google-gcr': googleKeys,
  'artifact-registry': googleKeys,
  'github-ghcr': githubGhcr,
};

export function registryTypeModule(type: string): RegistryTypeModule | undefined {
  return Object.hasOwn(MODULES, type) ? MODULES[type] : undefined;
}

/** The registry's host where a type's URL names another address (Alibaba's API address). */
export function registryHostOf(type: string, url: URL): string {
  return type === 'ali-acr' ? aliRegistryHost(url) : url.host;
}

export type { RegistryTypeModule, TypeContext, TypeRuntime, RepositoryPreparer, RegistrySettings } from './registry-type.js';
export { ProviderApi } from './provider-api.js';
