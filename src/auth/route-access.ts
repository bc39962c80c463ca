import { RequestMethod, Type } from '@nestjs/common';
import { METHOD_METADATA, PATH_METADATA } from '@nestjs/common/constants';
import { MetadataScanner, ModulesContainer, Reflector } from '@nestjs/core';
import { ACCESS_METADATA, AccessPolicy } from './access.decorator';

export interface RouteAccess {
  method: string;
  path: string;
  handler: string;
  access: AccessPolicy | undefined;
}

type PathMetadata = string | string[] | undefined;

const asList = (paths: PathMetadata): string[] => (Array.isArray(paths) ? paths : [paths ?? '']);
const joinPath = (base: string, path: string) => `/${base}/${path}`.replace(/\/+/g, '/').replace(/(.)\/$/, '$1');

/** Every route handler of every controller registered in the application, with its declared access. */
export function listRouteAccess(modules: ModulesContainer, reflector: Reflector): RouteAccess[] {
  const scanner = new MetadataScanner();
  const routes: RouteAccess[] = [];
  for (const module of modules.values()) {
    for (const wrapper of module.controllers.values()) {
      const controller = wrapper.metatype as Type | null;
      if (!controller?.prototype) continue;
      const basePaths = asList(Reflect.getMetadata(PATH_METADATA, controller) as PathMetadata);
      for (const name of scanner.getAllMethodNames(controller.prototype)) {
        const handler = controller.prototype[name] as (...args: unknown[]) => unknown;
        const method = Reflect.getMetadata(METHOD_METADATA, handler) as RequestMethod | undefined;
        if (method === undefined) continue;
        const access = reflector.getAllAndOverride<AccessPolicy | undefined>(ACCESS_METADATA, [handler, controller]);
        for (const base of basePaths) {
          for (const path of asList(Reflect.getMetadata(PATH_METADATA, handler) as PathMetadata)) {
            routes.push({ method: RequestMethod[method], path: joinPath(base, path), handler: `${controller.name}.${name}`, access });
          }
        }
      }
    }
  }
  return routes;
}
